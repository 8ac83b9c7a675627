-- A token's own scopes, as a JSON list of JupyterHub scope strings; NULL: its owner's.
ALTER TABLE api_tokens ADD COLUMN scopes TEXT;
