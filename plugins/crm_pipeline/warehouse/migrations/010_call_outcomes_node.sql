-- What a call taught us (birthday, gender, preferences, tags) belongs to the person, not to
-- the customer id they had that day: each outcome keeps the identity node (a platform
-- account) of the customer called, and dim_customers gives the answer to whichever customer
-- holds that node now, after merges and splits (D59).
alter table outreach.call_outcomes add column if not exists node_key text;

do $$
begin
    if to_regclass('marts.customer_identities') is not null then
        update outreach.call_outcomes co
           set node_key = (select min(ci.node_key) from marts.customer_identities ci
                            where ci.customer_id = co.customer_id and ci.identifier_type = 'platform_account')
         where co.node_key is null;
    end if;
end
$$;
