-- One row per customer, typed and tidied; contact details stay here and are tagged PII.
select
    cast(customer_id as bigint) as customer_id,
    trim(first_name) as first_name,
    trim(last_name) as last_name,
    lower(trim(email)) as email,
    phone,
    street_address,
    city,
    lower(region) as region,
    postal_code,
    cast(birth_date as date) as birth_date,
    cast(signup_at as timestamp) as signup_at,
    cast(updated_at as timestamp) as updated_at
from {{ source('raw', 'customers') }}
