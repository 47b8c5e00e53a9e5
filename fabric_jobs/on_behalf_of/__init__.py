"""Tokens on behalf of a job's user: the first on-behalf-of exchange at Create (MSAL, the workload's app
credentials), the credential material kept for late starts and long runs (sealed with the operator's key,
bound to its job), and ctx.credential / ctx.access_token for handlers."""
