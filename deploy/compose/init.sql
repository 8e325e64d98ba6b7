-- Runs once, on the first start of the compose postgres service (an empty data volume), as the
-- superuser: everything walfeed needs, with a role that is not a superuser (README, "Security").
-- The demo password is also in compose.yaml; both are for this local demo only.

CREATE ROLE walfeed LOGIN REPLICATION PASSWORD 'walfeed-demo';

CREATE TABLE public.orders (
  id         bigserial PRIMARY KEY,
  customer   text          NOT NULL,
  amount     numeric(10,2) NOT NULL,
  status     text          NOT NULL DEFAULT 'new',
  placed_at  timestamptz   NOT NULL DEFAULT now()
);
-- Rows that exist before walfeed's first start arrive as READ changes (the initial snapshot).
INSERT INTO public.orders (customer, amount) VALUES ('ada', 12.50), ('grace', 99.00);

-- The snapshot reads the published tables, so walfeed needs SELECT on them.
GRANT SELECT ON public.orders TO walfeed;

-- walfeed's default publication name; created here because creating it FOR ALL TABLES would
-- need a superuser. Add tables later with ALTER PUBLICATION walfeed ADD TABLE ...
CREATE PUBLICATION walfeed FOR TABLE public.orders;
