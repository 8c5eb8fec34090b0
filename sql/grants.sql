-- The least privilege driftd needs. Run as the table owner / a superuser, once.
-- :'password' is a psql variable: psql -v password=... -f sql/grants.sql
CREATE ROLE driftd LOGIN PASSWORD :'password';

-- driftd owns its schema: state, rejected rows, drift events, the model registry.
CREATE SCHEMA IF NOT EXISTS driftd AUTHORIZATION driftd;

-- It reads the outcomes table …
GRANT USAGE ON SCHEMA public TO driftd;
GRANT SELECT ON public.outcomes TO driftd;
-- … and, when it scores rows that have no prediction, writes only the prediction columns.
GRANT UPDATE (prediction, model_version) ON public.outcomes TO driftd;
