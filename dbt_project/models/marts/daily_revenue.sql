-- Gross revenue per order date, cancelled orders excluded (returns are still counted).
select
    order_date,
    count(*) as order_count,
    cast(sum(order_amount) as decimal(18, 2)) as revenue,
    cast(round(sum(order_amount) / count(*), 2) as decimal(18, 2)) as avg_order_value
from {{ ref('int_orders_enriched') }}
where status <> 'cancelled'
group by order_date
