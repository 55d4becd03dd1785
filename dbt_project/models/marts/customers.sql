-- One row per customer with order history; lifetime value counts every order not cancelled.
with customers as (
    select * from {{ ref('stg_customers') }}
),

order_history as (
    select
        customer_id,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        count(*) as order_count,
        sum(case when status <> 'cancelled' then order_amount else 0 end) as lifetime_value
    from {{ ref('int_orders_enriched') }}
    group by customer_id
)

select
    customers.customer_id,
    customers.email,
    customers.region,
    cast(customers.signup_at as date) as signup_date,
    order_history.first_order_at,
    order_history.last_order_at,
    cast(coalesce(order_history.order_count, 0) as bigint) as order_count,
    cast(coalesce(order_history.lifetime_value, 0) as decimal(18, 2)) as lifetime_value
from customers
left join order_history on customers.customer_id = order_history.customer_id
