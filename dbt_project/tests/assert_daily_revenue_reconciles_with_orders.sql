-- Revenue in daily_revenue must equal the non-cancelled order amounts in the orders mart.
with by_day as (
    select sum(revenue) as revenue, sum(order_count) as order_count
    from {{ ref('daily_revenue') }}
),

by_order as (
    select sum(order_amount) as revenue, count(*) as order_count
    from {{ ref('orders') }}
    where status <> 'cancelled'
)

select by_day.revenue, by_order.revenue, by_day.order_count, by_order.order_count
from by_day, by_order
where by_day.revenue is distinct from by_order.revenue
    or by_day.order_count is distinct from by_order.order_count
