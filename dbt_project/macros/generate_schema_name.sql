{#- Schemas are exactly staging / intermediate / marts / reference: analysts
    type `marts.dim_customers`, not `public_marts.dim_customers`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
