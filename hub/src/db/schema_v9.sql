-- Servers that run as Slurm jobs (`[spawner] backend = "slurm"`): the job id, recorded
-- the moment the job is submitted, and the node address the server answers at once it
-- runs (its port goes in `port`), so a restarted hub follows the same job.
ALTER TABLE servers ADD COLUMN job_id INTEGER;
ALTER TABLE servers ADD COLUMN host TEXT;
