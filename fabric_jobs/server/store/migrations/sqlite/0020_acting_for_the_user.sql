-- Jobs that act for the user. `caller`: who asked, JSON of tenant_id, object_id, user_principal_name and
-- app_id from the Create's subjectToken (never a token); NULL for jobs created without one.
ALTER TABLE job_instances ADD COLUMN caller TEXT;

-- The credential material a job needs to get tokens on its user's behalf (the MSAL token cache of the first
-- on-behalf-of exchange), sealed with the operator's key (AES-GCM, the job's key as associated data): only
-- ciphertext is ever stored. A row lives while its job has not ended: the trigger below deletes it in the
-- transaction of the job's terminal transition, whichever statement makes it, and deleting the job deletes it.
CREATE TABLE job_credentials (
    tenant_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    item_type TEXT NOT NULL,
    item_id TEXT NOT NULL,
    job_type TEXT NOT NULL,
    job_instance_id TEXT NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id),
    FOREIGN KEY (tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id)
        REFERENCES job_instances (tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id)
        ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TRIGGER job_instances_forget_credential AFTER UPDATE OF status ON job_instances
FOR EACH ROW WHEN NEW.status IN ('Completed', 'Failed', 'Cancelled')
BEGIN
    DELETE FROM job_credentials
    WHERE tenant_id = NEW.tenant_id AND workspace_id = NEW.workspace_id AND item_type = NEW.item_type
        AND item_id = NEW.item_id AND job_type = NEW.job_type AND job_instance_id = NEW.job_instance_id;
END;

-- SQLite enforces the foreign key's cascade only on connections with PRAGMA foreign_keys on (the store's
-- are); this trigger deletes the credential with its job on any connection.
CREATE TRIGGER job_instances_delete_credential AFTER DELETE ON job_instances
FOR EACH ROW
BEGIN
    DELETE FROM job_credentials
    WHERE tenant_id = OLD.tenant_id AND workspace_id = OLD.workspace_id AND item_type = OLD.item_type
        AND item_id = OLD.item_id AND job_type = OLD.job_type AND job_instance_id = OLD.job_instance_id;
END;
