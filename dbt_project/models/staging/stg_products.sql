-- One row per product; money as decimal(18,2) so downstream contracts stay stable.
select
    cast(product_id as bigint) as product_id,
    sku,
    product_name,
    lower(category) as category,
    cast(unit_price as decimal(18, 2)) as unit_price
from {{ source('raw', 'products') }}
