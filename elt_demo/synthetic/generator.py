"""Deterministic, vectorised generation of the synthetic shop's raw tables.

Every table is built from whole numpy arrays (no per-order Python loops) so that 10 M orders take
seconds. Each table draws from its own child of ``SeedSequence(spec.seed)``, so the same spec always
yields identical tables and changing how one table is drawn does not reshuffle the others.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TABLE_NAMES = ("customers", "products", "orders", "payments")
ORDER_STATUSES = ("placed", "shipped", "delivered", "returned", "cancelled")
PAYMENT_METHODS = ("card", "bank_transfer", "gift_card", "paypal")
REGIONS = ("north", "south", "east", "west", "central", "northeast", "northwest", "southeast")
PRODUCT_CATEGORIES = (
    "electronics",
    "home",
    "garden",
    "toys",
    "books",
    "sports",
    "beauty",
    "grocery",
)
N_PRODUCTS = 200
MIN_ROWS = 100
#: Key under which generate_frames stores the spec in each table's schema metadata.
SPEC_METADATA_KEY = b"elt_demo.synthetic.spec"

MONEY = pa.decimal128(12, 2)
TIMESTAMP = pa.timestamp("us")

CUSTOMERS_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("first_name", pa.string()),
        ("last_name", pa.string()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("street_address", pa.string()),
        ("city", pa.string()),
        ("region", pa.string()),
        ("postal_code", pa.string()),
        ("birth_date", pa.date32()),
        ("signup_at", TIMESTAMP),
        ("updated_at", TIMESTAMP),
    ]
)
PRODUCTS_SCHEMA = pa.schema(
    [
        ("product_id", pa.int64()),
        ("sku", pa.string()),
        ("product_name", pa.string()),
        ("category", pa.string()),
        ("unit_price", MONEY),
    ]
)
ORDERS_SCHEMA = pa.schema(
    [
        ("order_id", pa.int64()),
        ("customer_id", pa.int64()),
        ("product_id", pa.int64()),
        ("quantity", pa.int32()),
        ("unit_price", MONEY),
        ("status", pa.string()),
        ("ordered_at", TIMESTAMP),
        ("updated_at", TIMESTAMP),
    ]
)
PAYMENTS_SCHEMA = pa.schema(
    [
        ("payment_id", pa.int64()),
        ("order_id", pa.int64()),
        ("method", pa.string()),
        ("amount", MONEY),
        ("paid_at", TIMESTAMP),
    ]
)
SCHEMAS: dict[str, pa.Schema] = {
    "customers": CUSTOMERS_SCHEMA,
    "products": PRODUCTS_SCHEMA,
    "orders": ORDERS_SCHEMA,
    "payments": PAYMENTS_SCHEMA,
}

_US = 1_000_000
_DAY_US = 86_400 * _US
_EPOCH = dt.date(1970, 1, 1)


def _days(d: dt.date) -> int:
    return (d - _EPOCH).days


def _us(d: dt.date) -> int:
    return _days(d) * _DAY_US


SIGNUP_START_US = _us(dt.date(2023, 1, 1))
SIGNUP_END_US = _us(dt.date(2026, 1, 1))  # exclusive
ORDERS_START = dt.date(2024, 1, 1)
ORDERS_END_US = _us(dt.date(2026, 1, 1))  # exclusive
ORDER_DAYS = (dt.date(2026, 1, 1) - ORDERS_START).days
# Born 1936-01-01 .. 2004-12-31: at least 18 on 2023-01-01 and at most 89 on 2025-12-31.
BIRTH_START_DAY = _days(dt.date(1936, 1, 1))
BIRTH_END_DAY = _days(dt.date(2004, 12, 31))

# fmt: off
FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony",
    "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Kimberly", "Paul", "Emily",
    "Andrew", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian",
    "Dorothy", "George", "Melissa", "Timothy", "Deborah", "Ronald", "Stephanie", "Edward",
    "Rebecca", "Jason", "Sharon", "Jeffrey", "Laura", "Ryan", "Cynthia", "Jacob", "Kathleen",
    "Gary", "Amy", "Nicholas", "Angela", "Eric", "Shirley", "Jonathan", "Anna", "Stephen", "Brenda",
    "Larry", "Pamela", "Justin", "Emma", "Scott", "Nicole", "Brandon", "Helen", "Benjamin",
    "Samantha", "Samuel", "Katherine", "Gregory", "Christine", "Alexander", "Debra", "Frank",
    "Rachel", "Patrick", "Carolyn", "Raymond", "Janet", "Jack", "Maria", "Dennis", "Olivia",
    "Jerry", "Heather", "Tyler", "Diane", "Aaron", "Julie", "Jose", "Joyce", "Adam", "Victoria",
    "Nathan", "Kelly", "Henry", "Christina", "Douglas", "Lauren", "Zachary", "Joan", "Peter",
    "Evelyn", "Kyle", "Judith", "Ethan", "Megan", "Walter", "Andrea", "Noah", "Cheryl", "Jeremy",
    "Hannah", "Christian", "Jacqueline", "Keith", "Martha", "Roger", "Gloria", "Terry", "Teresa",
    "Gerald", "Ann", "Harold", "Sara", "Sean", "Madison", "Austin", "Frances", "Carl", "Kathryn",
    "Arthur", "Janice", "Lawrence", "Jean", "Dylan", "Abigail", "Jesse", "Alice", "Jordan", "Judy",
    "Bryan", "Sophia", "Billy", "Grace", "Joe", "Denise", "Bruce", "Amber", "Gabriel", "Doris",
    "Logan", "Marilyn", "Albert", "Danielle", "Willie", "Beverly", "Alan", "Isabella", "Juan",
    "Theresa", "Wayne", "Diana", "Elijah", "Natalie", "Randy", "Brittany", "Roy", "Charlotte",
    "Vincent", "Marie", "Ralph", "Kayla", "Eugene", "Alexis", "Russell", "Lori"
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark",
    "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres",
    "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell",
    "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker",
    "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook",
    "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly",
    "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez", "Wood",
    "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez", "Castillo",
    "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez", "Powell", "Jenkins", "Perry",
    "Russell", "Sullivan", "Bell", "Coleman", "Butler", "Henderson", "Barnes", "Gonzales", "Fisher",
    "Vasquez", "Simmons", "Romero", "Jordan", "Patterson", "Alexander", "Hamilton", "Graham",
    "Reynolds", "Griffin", "Wallace", "Moreno", "West", "Cole", "Hayes", "Bryant", "Herrera",
    "Gibson", "Ellis", "Tran", "Medina", "Aguilar", "Stevens", "Murray", "Ford", "Castro",
    "Marshall", "Owens", "Harrison", "Fernandez", "McDonald", "Woods", "Washington", "Kennedy",
    "Wells", "Vargas", "Henry", "Chen", "Freeman", "Webb", "Tucker", "Guzman", "Burns", "Crawford",
    "Olson", "Simpson", "Porter", "Hunter", "Gordon", "Mendez", "Silva", "Shaw", "Snyder", "Mason",
    "Dixon", "Munoz", "Hunt", "Hicks", "Holmes", "Palmer", "Wagner", "Black", "Robertson", "Boyd",
    "Rose", "Stone", "Salazar", "Fox"
)
# RFC 2606 reserved domains: realistic-looking, but no synthetic address can reach a real mailbox.
EMAIL_DOMAINS = (
    "example.com",
    "example.net",
    "example.org",
    "mail.example.com",
    "inbox.example.net",
    "post.example.org",
    "webmail.example.com",
    "corp.example.net",
)
EMAIL_DOMAIN_WEIGHTS = (0.28, 0.18, 0.12, 0.14, 0.1, 0.08, 0.06, 0.04)
STREET_NAMES = (
    "Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park", "Walnut",
    "Spruce", "Sunset", "Ridge", "River", "Highland", "Church", "Jackson", "Lincoln", "Meadow",
    "Forest", "Willow", "Chestnut", "Madison", "Franklin", "Mill", "Spring", "Valley", "Cherry",
    "Birch", "Dogwood", "Jefferson", "Adams", "Center", "Prospect", "Union", "Broad", "Court",
    "Grove", "Harbor"
)
STREET_SUFFIXES = ("St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Ct", "Way", "Pl", "Ter")
# Five fictional-sounding towns per region.
CITIES_BY_REGION = {
    "north": ("Fairview", "Northbrook", "Pinecrest", "Lakeside", "Ashford"),
    "south": ("Riverton", "Magnolia", "Palm Grove", "Cedar Bluff", "Bayview"),
    "east": ("Eastport", "Harborview", "Brookfield", "Kingston", "Mapleton"),
    "west": ("Westfield", "Sierra Vista", "Redwood", "Canyon Ridge", "Silverlake"),
    "central": ("Centerville", "Springfield", "Franklin", "Greenville", "Madison"),
    "northeast": ("Salem", "Milford", "Clinton", "Dover", "Newport"),
    "northwest": ("Aberdeen", "Cascade", "Evergreen", "Hood River", "Tacoma Falls"),
    "southeast": ("Savannah Creek", "Oakdale", "Coral Springs", "Hillsborough", "Peachtree"),
}
CITIES = tuple((city, region) for region, cities in CITIES_BY_REGION.items() for city in cities)
PRODUCT_ADJECTIVES = (
    "Classic", "Compact", "Deluxe", "Eco", "Essential", "Premium", "Smart", "Ultra", "Vintage",
    "Modern", "Portable", "Pro", "Everyday", "Organic", "Rugged", "Lightweight", "Signature",
    "Urban", "Cozy", "Bold"
)
# fmt: on
PRODUCT_NOUNS: dict[str, tuple[str, ...]] = {
    "electronics": ("Headphones", "Speaker", "Charger", "Keyboard", "Monitor", "Camera", "Tablet"),
    "home": ("Lamp", "Blanket", "Mug Set", "Cookware", "Blender", "Rug", "Pillow"),
    "garden": ("Planter", "Hose", "Shovel", "Seed Kit", "Bird Feeder", "Pruner", "Lantern"),
    "toys": ("Puzzle", "Robot", "Board Game", "Plush Bear", "Kite", "Train Set", "Blocks"),
    "books": ("Cookbook", "Novel", "Atlas", "Journal", "Biography", "Guidebook", "Anthology"),
    "sports": ("Yoga Mat", "Dumbbells", "Tennis Racket", "Water Bottle", "Backpack", "Helmet"),
    "beauty": ("Face Cream", "Shampoo", "Perfume", "Lip Balm", "Hair Dryer", "Soap Set"),
    "grocery": ("Coffee Beans", "Olive Oil", "Tea Sampler", "Granola", "Hot Sauce", "Honey"),
}
# Median price per category in dollars; prices are lognormal around it.
CATEGORY_PRICE_MEDIANS = {
    "electronics": 120.0,
    "home": 45.0,
    "garden": 30.0,
    "toys": 25.0,
    "books": 18.0,
    "sports": 40.0,
    "beauty": 22.0,
    "grocery": 12.0,
}

STATUS_WEIGHTS = (0.06, 0.10, 0.74, 0.04, 0.06)  # order of ORDER_STATUSES
# Late-arriving updates move an order one step along its life cycle.
STATUS_TRANSITIONS = {"placed": "shipped", "shipped": "delivered", "delivered": "returned"}
LATE_UPDATE_FRACTION = 0.02
SPLIT_PAYMENT_FRACTION = 0.05
PAYMENT_METHOD_WEIGHTS = (0.62, 0.14, 0.06, 0.18)
CUSTOMER_SKEW = 0.6  # exponent of the power law over customer ranks (0 = uniform)
PRODUCT_SKEW = 1.0


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate: ``rows`` distinct orders from ``seed``; customers scale as rows // 10."""

    rows: int = 10_000
    seed: int = 42

    def __post_init__(self) -> None:
        if isinstance(self.rows, bool) or not isinstance(self.rows, int):
            raise ValueError(f"SyntheticSpec.rows must be an int, got {self.rows!r}")
        if self.rows < MIN_ROWS:
            raise ValueError(f"SyntheticSpec.rows must be >= {MIN_ROWS}, got {self.rows}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"SyntheticSpec.seed must be an int, got {self.seed!r}")
        if self.seed < 0:
            raise ValueError(f"SyntheticSpec.seed must be >= 0, got {self.seed}")

    @property
    def n_customers(self) -> int:
        return max(MIN_ROWS, self.rows // 10)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def generate_frames(spec: SyntheticSpec) -> dict[str, pa.Table]:
    """Build the four raw tables for ``spec``; the same spec always gives identical tables."""
    rng_customers, rng_products, rng_orders, rng_payments = (
        np.random.Generator(np.random.PCG64(child))
        for child in np.random.SeedSequence(spec.seed).spawn(4)
    )
    customers, signup_us = _customers(rng_customers, spec.n_customers)
    products, price_cents = _products(rng_products)
    orders, first = _orders(rng_orders, spec.rows, signup_us, price_cents)
    payments = _payments(rng_payments, first)
    # The spec travels with the tables so write_landing can record what produced the files.
    metadata = {SPEC_METADATA_KEY: spec.to_json().encode()}
    frames = {
        "customers": customers,
        "products": products,
        "orders": orders,
        "payments": payments,
    }
    return {name: table.replace_schema_metadata(metadata) for name, table in frames.items()}


def spec_from_table(table: pa.Table) -> SyntheticSpec | None:
    """The spec recorded in a generated table's schema metadata, if any."""
    raw = (table.schema.metadata or {}).get(SPEC_METADATA_KEY)
    if raw is None:
        return None
    return SyntheticSpec(**json.loads(raw))


# --------------------------------------------------------------------------------------------
# array helpers
#
# At 10 M rows the cost is memory traffic, not arithmetic: categorical draws use a lookup table
# indexed by 20 random bits (a gather instead of a binary search), and wide temporaries are avoided.

_LUT_BITS = 20


def _money(cents: np.ndarray) -> pa.Array:
    """decimal128(12,2) array from integer cents, built straight from the 128-bit buffer."""
    cents = np.asarray(cents, dtype=np.int64)
    words = np.zeros(2 * len(cents), dtype=np.int64)  # little-endian (low, high) pairs
    words[0::2] = cents
    if len(cents) and cents.min() < 0:
        words[1::2] = cents >> 63  # sign extension
    return pa.Array.from_buffers(MONEY, len(cents), [None, pa.py_buffer(words)])


def _timestamps(us: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(us, dtype=np.int64), type=TIMESTAMP)


def _pick(values: tuple[str, ...] | list[str], idx: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.string()).take(pa.array(idx))


def _digits(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(pc.cast(pa.array(values, type=pa.int64()), pa.string()), width, "0")


def _categorical(
    rng: np.random.Generator, weights: Sequence[float] | np.ndarray, size: int
) -> np.ndarray:
    """Indices drawn with probability proportional to ``weights`` (resolution 2**-20)."""
    weights = np.asarray(weights, dtype=np.float64)
    bounds = np.round(np.cumsum(weights) / weights.sum() * (1 << _LUT_BITS)).astype(np.int64)
    dtype = np.int8 if len(weights) <= 127 else np.int16 if len(weights) <= 32_767 else np.int32
    table = np.repeat(np.arange(len(weights), dtype=dtype), np.diff(bounds, prepend=0))
    return table[rng.integers(0, 1 << _LUT_BITS, size, dtype=np.uint32)]


def _power_law_ranks(rng: np.random.Generator, n: int, size: int, skew: float) -> np.ndarray:
    """0-based ranks in [0, n) with P(rank k) roughly proportional to (k + 1) ** -skew.

    Inverse CDF of the continuous power law on [1, n + 1): O(size), no cumulative table.
    """
    u = rng.random(size)
    if skew == 1.0:
        x = np.exp(u * np.log(n + 1.0))
    else:
        a = 1.0 - skew
        x = (1.0 + u * ((n + 1.0) ** a - 1.0)) ** (1.0 / a)
    ranks = x.astype(np.int32)
    ranks -= 1
    return np.minimum(ranks, n - 1, out=ranks)


# --------------------------------------------------------------------------------------------
# tables


def _customers(rng: np.random.Generator, n: int) -> tuple[pa.Table, np.ndarray]:
    ids = np.arange(1, n + 1, dtype=np.int64)
    first = _pick(FIRST_NAMES, rng.integers(0, len(FIRST_NAMES), n))
    last = _pick(LAST_NAMES, rng.integers(0, len(LAST_NAMES), n))
    domain = _pick(EMAIL_DOMAINS, _categorical(rng, EMAIL_DOMAIN_WEIGHTS, n))
    id_text = pc.cast(pa.array(ids), pa.string())
    # The id in the local part makes every address unique regardless of name collisions.
    local = pc.binary_join_element_wise(first, ".", last, id_text, "")
    email = pc.utf8_lower(pc.binary_join_element_wise(local, "@", domain, ""))
    # 555-01xx numbers are reserved for fiction in the North American numbering plan.
    phone = pc.binary_join_element_wise(
        "+1-555-01",
        _digits(rng.integers(0, 100, n), 2),
        "-",
        _digits(rng.integers(0, 10_000, n), 4),
        "",
    )
    street = pc.binary_join_element_wise(
        pc.cast(pa.array(rng.integers(1, 10_000, n)), pa.string()),
        _pick(STREET_NAMES, rng.integers(0, len(STREET_NAMES), n)),
        _pick(STREET_SUFFIXES, rng.integers(0, len(STREET_SUFFIXES), n)),
        " ",
    )
    city_idx = rng.integers(0, len(CITIES), n)
    city = _pick([c for c, _ in CITIES], city_idx)
    region = _pick([r for _, r in CITIES], city_idx)
    postal = _digits(rng.integers(1_000, 100_000, n), 5)
    birth = rng.integers(BIRTH_START_DAY, BIRTH_END_DAY + 1, n).astype(np.int32)
    # Most of the customer base predates the order history; later sign-ups thin out.
    signup_span_s = (SIGNUP_END_US - SIGNUP_START_US) // _US
    signup_us = SIGNUP_START_US + (rng.random(n) ** 2 * signup_span_s).astype(np.int64) * _US
    # About half the profiles were edited after sign-up; the edit happens before the data ends.
    edited = rng.random(n) < 0.5
    edit_offset = (rng.random(n) * (SIGNUP_END_US - _US - signup_us)).astype(np.int64)
    updated_us = signup_us + np.where(edited, edit_offset // _US * _US, 0)
    table = pa.Table.from_arrays(
        [
            pa.array(ids),
            first,
            last,
            email,
            phone,
            street,
            city,
            region,
            postal,
            pa.array(birth, type=pa.date32()),
            _timestamps(signup_us),
            _timestamps(updated_us),
        ],
        schema=CUSTOMERS_SCHEMA,
    )
    return table, signup_us


def _products(rng: np.random.Generator) -> tuple[pa.Table, np.ndarray]:
    n = N_PRODUCTS
    ids = np.arange(1, n + 1, dtype=np.int64)
    category_idx = np.arange(n) % len(PRODUCT_CATEGORIES)
    rng.shuffle(category_idx)
    categories = [PRODUCT_CATEGORIES[i] for i in category_idx]
    # 200 names, not per-order work: unique adjective/noun pairs per category.
    names: list[str] = []
    combos = {
        c: [f"{a} {b}" for a in PRODUCT_ADJECTIVES for b in PRODUCT_NOUNS[c]]
        for c in PRODUCT_CATEGORIES
    }
    order = {c: rng.permutation(len(combos[c])) for c in PRODUCT_CATEGORIES}
    cursor = dict.fromkeys(PRODUCT_CATEGORIES, 0)
    for category in categories:
        name = combos[category][order[category][cursor[category]]]
        cursor[category] += 1
        names.append(name)
    medians = np.array([CATEGORY_PRICE_MEDIANS[c] for c in categories])
    dollars = np.ceil(medians * rng.lognormal(0.0, 0.9, n))
    cents = (np.clip(dollars, 2, 2000) * 100 - 1).astype(np.int64)  # 1.99 .. 1999.99
    sku = pc.binary_join_element_wise("SKU-", _digits(ids, 5), "")
    table = pa.Table.from_arrays(
        [
            pa.array(ids),
            sku,
            pa.array(names, type=pa.string()),
            pa.array(categories, type=pa.string()),
            _money(cents),
        ],
        schema=PRODUCTS_SCHEMA,
    )
    return table, cents


def _order_day_weights() -> np.ndarray:
    day = np.arange(ORDER_DAYS)
    weekday = (np.datetime64(ORDERS_START, "D") + day).astype("datetime64[D]").view(np.int64)
    weekday = (weekday + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    weekday_factor = np.array([1.0, 0.95, 0.95, 1.0, 1.1, 1.35, 1.25])[weekday]
    day_of_year = day % 365.25
    holiday = 1.0 + 0.8 * np.exp(-(((day_of_year - 335.0) / 18.0) ** 2))  # late Nov / Dec peak
    summer_dip = 1.0 - 0.15 * np.exp(-(((day_of_year - 200.0) / 30.0) ** 2))
    growth = 1.0 + 0.4 * day / ORDER_DAYS
    return weekday_factor * holiday * summer_dip * growth


def _orders(
    rng: np.random.Generator, rows: int, signup_us: np.ndarray, price_cents: np.ndarray
) -> tuple[pa.Table, dict[str, np.ndarray]]:
    n_customers = len(signup_us)
    order_id = np.arange(1, rows + 1, dtype=np.int64)
    # Skewed customers: a power law over ranks, ranks shuffled onto ids so heavy buyers are spread.
    rank_to_customer = rng.permutation(n_customers).astype(np.int32)
    customer_idx = rank_to_customer[_power_law_ranks(rng, n_customers, rows, CUSTOMER_SKEW)]
    product_idx = rng.permutation(N_PRODUCTS)[
        _categorical(rng, np.arange(1, N_PRODUCTS + 1) ** -PRODUCT_SKEW, rows)
    ]
    quantity = (_categorical(rng, 0.45 ** np.arange(10), rows) + 1).astype(np.int32)
    status_idx = _categorical(rng, STATUS_WEIGHTS, rows)

    # Day from a weekly/seasonal profile, minute from a daily profile, then a uniform second.
    day = _categorical(rng, _order_day_weights(), rows).astype(np.int64)
    minute = _categorical(rng, _minute_of_day_weights(), rows)
    ordered_us = day * _DAY_US
    ordered_us += minute.astype(np.int64) * (60 * _US)
    ordered_us += rng.integers(0, 60, rows, dtype=np.int32).astype(np.int64) * _US
    ordered_us += _us(ORDERS_START)
    # Nobody orders before signing up: redraw those orders uniformly after the sign-up.
    signup = signup_us[customer_idx]
    early = np.flatnonzero(ordered_us < signup)
    span_s = (ORDERS_END_US - signup[early]) // _US
    ordered_us[early] = signup[early] + (rng.random(len(early)) * span_s).astype(np.int64) * _US
    del signup

    # Late-arriving updates: ~2 % of all orders get a second row one life-cycle step further.
    transitionable = status_idx <= ORDER_STATUSES.index("delivered")
    p_update = min(1.0, LATE_UPDATE_FRACTION / max(float(transitionable.mean()), 1e-9))
    updated = np.flatnonzero(transitionable & (rng.random(rows, dtype=np.float32) < p_update))
    new_status_idx = status_idx[updated] + 1  # placed->shipped->delivered->returned
    update_us = ordered_us[updated] + rng.integers(3_600, 30 * 86_400, len(updated)) * _US

    price = price_cents[product_idx]
    customer_id = customer_idx.astype(np.int64) + 1
    product_id = product_idx.astype(np.int64) + 1
    statuses = pa.array(ORDER_STATUSES, type=pa.string())

    # First versions then updates, as two chunks: no copy of the 10 M first-version rows.
    def column(values: np.ndarray, make=pa.array) -> pa.ChunkedArray:
        return pa.chunked_array([make(values), make(values[updated])])

    table = pa.Table.from_arrays(
        [
            column(order_id),
            column(customer_id),
            column(product_id),
            column(quantity),
            column(price, _money),
            pa.chunked_array([statuses.take(status_idx), statuses.take(new_status_idx)]),
            column(ordered_us, _timestamps),
            pa.chunked_array([_timestamps(ordered_us), _timestamps(update_us)]),
        ],
        schema=ORDERS_SCHEMA,
    )
    first = {
        "order_id": order_id,
        "status_idx": status_idx,
        "total_cents": quantity * price,
        "ordered_us": ordered_us,
    }
    return table, first


def _minute_of_day_weights() -> np.ndarray:
    hour = np.arange(1440) / 60.0
    return (
        0.15
        + np.exp(-(((hour - 14.5) / 3.5) ** 2) / 2)
        + 0.5 * np.exp(-(((hour - 20.5) / 1.5) ** 2))
    )


def _payments(rng: np.random.Generator, first: dict[str, np.ndarray]) -> pa.Table:
    # Transitions never lead to "cancelled", so the first version decides who pays.
    paying = np.flatnonzero(first["status_idx"] != ORDER_STATUSES.index("cancelled"))
    n_paying = len(paying)
    total = first["total_cents"][paying]
    split = np.flatnonzero(rng.random(n_paying, dtype=np.float32) < SPLIT_PAYMENT_FRACTION)
    n_split = len(split)
    share = rng.uniform(0.2, 0.8, n_split)
    split_first = np.clip(np.round(total[split] * share).astype(np.int64), 1, total[split] - 1)

    first_amount = total.copy()
    first_amount[split] = split_first
    delay_s = np.minimum(rng.standard_exponential(n_paying, dtype=np.float32) * 7_200, 604_800)
    first_paid_us = first["ordered_us"][paying] + delay_s.astype(np.int64) * _US
    first_method = _categorical(rng, PAYMENT_METHOD_WEIGHTS, n_paying)
    # The remainder of a split payment is settled later, possibly another way.
    second_paid_us = first_paid_us[split] + rng.integers(3_600, 10 * 86_400, n_split) * _US
    second_method = _categorical(rng, PAYMENT_METHOD_WEIGHTS, n_split)

    # Interleave: each split order's second payment directly follows its first.
    m = n_paying + n_split
    shift = np.zeros(n_paying, dtype=np.int64)
    shift[split] = 1
    primary_pos = np.arange(n_paying, dtype=np.int64)
    primary_pos[1:] += np.cumsum(shift)[:-1]
    second_pos = primary_pos[split] + 1

    def interleave(primary: np.ndarray, second: np.ndarray) -> np.ndarray:
        out = np.empty(m, dtype=primary.dtype)
        out[primary_pos] = primary
        out[second_pos] = second
        return out

    order_id = first["order_id"][paying]
    return pa.Table.from_arrays(
        [
            pa.array(np.arange(1, m + 1, dtype=np.int64)),
            pa.array(interleave(order_id, order_id[split])),
            _pick(PAYMENT_METHODS, interleave(first_method, second_method)),
            _money(interleave(first_amount, total[split] - split_first)),
            _timestamps(interleave(first_paid_us, second_paid_us)),
        ],
        schema=PAYMENTS_SCHEMA,
    )
