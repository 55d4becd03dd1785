-- Latest version of each order: a late-arriving update supersedes the earlier rows of its order.
with source as (
    select * from {{ source('raw', 'orders') }}
),

-- Only the few orders with more than one version need a decision; an anti join against them
-- keeps this close to a plain copy (a row_number() window sorts every row and is ~3x slower).
updated_orders as (
    select
        order_id,
        max(updated_at) as latest_updated_at
    from source
    group by order_id
    having count(*) > 1
)

select
    cast(source.order_id as bigint) as order_id,
    cast(source.customer_id as bigint) as customer_id,
    cast(source.product_id as bigint) as product_id,
    cast(source.quantity as integer) as quantity,
    cast(source.unit_price as decimal(18, 2)) as unit_price,
    lower(source.status) as status,
    cast(source.ordered_at as timestamp) as ordered_at,
    cast(source.updated_at as timestamp) as updated_at
from source
anti join updated_orders
    on source.order_id = updated_orders.order_id
    and source.updated_at < updated_orders.latest_updated_at
