"""How stored jobs reach handlers: the dispatch the lifecycle talks to, the in-process executor and its local
dispatch, execution on procrastinate and its worker, and the starter that picks one per database."""
