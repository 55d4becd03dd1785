-- One row per order, current status, with amounts due and paid.
select
    order_id,
    customer_id,
    product_id,
    category,
    order_date,
    status,
    quantity,
    order_amount,
    paid_amount,
    paid_amount >= order_amount as is_fully_paid
from {{ ref('int_orders_enriched') }}
