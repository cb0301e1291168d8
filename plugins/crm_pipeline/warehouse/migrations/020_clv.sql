-- Customer lifetime value (BG/NBD + Gamma-Gamma, crm_pipeline/clv, DECISIONLOG D80-D89).
-- Written by the nightly `clv` step (Python), read through dbt: source `clv` and the view
-- marts.customer_clv (dbt_project/models/marts/clv/).
create schema if not exists clv;

-- The latest night's scores, one row per customer with a paid order. A run replaces them
-- whole (a rerun of an earlier day leaves newer scores alone).
create table if not exists clv.customer_scores (
    customer_id               text primary key,
    fit_group                 text not null,          -- the population fitted: the customer's first shop, or 'all'
    status                    text not null check (status in ('fitted', 'not_enough_data', 'fit_failed')),
    first_purchase_date       date not null,
    last_purchase_date        date not null,
    frequency                 integer not null,       -- x: purchase days after the first (repeat purchases)
    recency_weeks             double precision not null,  -- t_x: first to last purchase day, weeks
    t_weeks                   double precision not null,  -- T: first purchase day to the as-of date, weeks
    avg_repeat_value_cny      numeric(14, 2),          -- m_x: mean value of the repeat purchase days (net of refunds)
    p_alive                   double precision,
    expected_purchases_30d    double precision,
    expected_purchases_90d    double precision,
    expected_purchases_365d   double precision,
    expected_order_value_cny  numeric(14, 2),
    clv_cny                   numeric(14, 2),
    expected_next_order_date  date,
    as_of_date                date not null,
    model_version             text not null,
    scored_at                 timestamptz not null default now()
);
create index if not exists customer_scores_group on clv.customer_scores (fit_group);

-- Every fit, per night and population: parameters, likelihood, why not fitted.
create table if not exists clv.fits (
    as_of_date        date not null,
    purpose           text not null check (purpose in ('score', 'backtest')),
    fit_group         text not null,
    status            text not null check (status in ('fitted', 'not_enough_data', 'fit_failed')),
    detail            text,                   -- why not fitted, in words
    cutoff_date       date not null,          -- last day of the calibration period
    customers         integer not null,
    repeat_buyers     integer not null,
    bgnbd_r           double precision,
    bgnbd_alpha       double precision,
    bgnbd_a           double precision,
    bgnbd_b           double precision,
    bgnbd_log_likelihood double precision,
    gg_p              double precision,
    gg_q              double precision,
    gg_gamma          double precision,
    gg_log_likelihood double precision,
    gg_frequency_spend_correlation double precision,  -- the Gamma-Gamma independence check
    fit_seconds       double precision,
    model_version     text not null,
    fitted_at         timestamptz not null default now(),
    primary key (as_of_date, purpose, fit_group)
);

-- The nightly backtest: fitted up to cutoff_date, predicted to as_of_date, compared.
create table if not exists clv.backtests (
    as_of_date             date primary key,
    cutoff_date            date not null,
    status                 text not null check (status in ('ok', 'worse_than_naive', 'not_enough_data')),
    detail                 text,
    customers              integer not null,
    actual_purchases       integer,
    predicted_purchases    double precision,
    naive_purchases        double precision,
    rmse_model             double precision,   -- per customer, purchases in the holdout
    rmse_naive             double precision,   -- each customer repeating their past rate
    mae_model              double precision,
    mae_naive              double precision,
    tracking               jsonb not null default '[]'::jsonb,  -- [[week end, actual cumulative, predicted cumulative]]
    model_version          text not null,
    computed_at            timestamptz not null default now()
);
