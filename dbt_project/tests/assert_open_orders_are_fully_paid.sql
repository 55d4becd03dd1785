-- Every order that is not cancelled is settled exactly; cancelled orders carry no payment.
select order_id, status, order_amount, paid_amount
from {{ ref('orders') }}
where (status <> 'cancelled' and paid_amount <> order_amount)
    or (status = 'cancelled' and paid_amount <> 0)
