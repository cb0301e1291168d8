"""Running dbt: connection env from the warehouse URL, vars from the run."""
