{#- Generic data test: the combination of columns is unique (dbt_utils-free). -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- Generic data test: numeric column within [min_value, max_value]. -#}
{% test between(model, column_name, min_value=none, max_value=none) %}
select * from {{ model }}
where {{ column_name }} is not null and (
    false
    {% if min_value is not none %} or {{ column_name }} < {{ min_value }}{% endif %}
    {% if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %}
)
{% endtest %}

{#- Generic data test: a count never exceeds the count it is a share of (a numerator
    within its denominator), so the share is in [0, 1] by construction, not by rounding. -#}
{% test not_greater_than(model, column_name, other_column) %}
select * from {{ model }}
where {{ column_name }} > {{ other_column }}
{% endtest %}
