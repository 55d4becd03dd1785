{#
    Fails for every row where `expression` is not true. On a column, the column name is put in
    front of the expression (`expression: ">= 0"`); on a model, the expression stands alone.
#}
{% test expression_is_true(model, expression, column_name=None) %}

select *
from {{ model }}
where not (
    {% if column_name is not none %}{{ column_name }} {% endif %}{{ expression }}
)

{% endtest %}
