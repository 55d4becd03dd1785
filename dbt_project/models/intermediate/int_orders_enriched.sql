-- One row per order with its product category, amount due and what has been paid against it.
with orders as (
    select * from {{ ref('stg_orders') }}
),

products as (
    select product_id, category from {{ ref('stg_products') }}
),

payments as (
    select
        order_id,
        sum(amount) as paid_amount,
        count(*) as payment_count
    from {{ ref('stg_payments') }}
    group by order_id
)

select
    orders.order_id,
    orders.customer_id,
    orders.product_id,
    products.category,
    orders.quantity,
    orders.unit_price,
    cast(orders.quantity * orders.unit_price as decimal(18, 2)) as order_amount,
    cast(coalesce(payments.paid_amount, 0) as decimal(18, 2)) as paid_amount,
    cast(coalesce(payments.payment_count, 0) as bigint) as payment_count,
    orders.status,
    orders.ordered_at,
    cast(orders.ordered_at as date) as order_date,
    orders.updated_at
from orders
left join products on orders.product_id = products.product_id
left join payments on orders.order_id = payments.order_id
