-- One row per payment, typed.
select
    cast(payment_id as bigint) as payment_id,
    cast(order_id as bigint) as order_id,
    lower(method) as method,
    cast(amount as decimal(18, 2)) as amount,
    cast(paid_at as timestamp) as paid_at
from {{ source('raw', 'payments') }}
