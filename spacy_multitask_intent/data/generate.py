"""Deterministic generator for the embedded default "store lookup" dataset.

The task: a retailer's assistant must tag ``STORE`` only when the query is
about a store (hours, pickup, directions, phone number, ...). Many real US
place names that host stores are also common words / products ("orange",
"plum", "walnut", "mango", "rice", "sugar land", "cherry hill", ...). The same
words appear as ``PRODUCT`` in non-store queries ("add 3 oranges to my cart"),
as unlabelled words ("this jacket in orange", "ship it to orange"), and inside
larger products ("orange juice") — these are the required hard negatives.

Records use the JSONL converter format::

    {"text": "...", "spans": [{"start": 0, "end": 6, "label": "STORE"}],
     "intents": ["store_lookup"]}

Everything is a function of the seed only (``random.Random(seed)``).

``generate(..., hard=True)`` (CLI ``generate --hard``) builds a harder split
of the same task: more place names that are also products (``mayo``,
``turkey``, ``salt lake city``, ``jersey city``, ...), short store queries
without the word "store" ("mayo hours"), non-store queries that name a store
("return the ham to the ham lake store": the place stays unlabelled, because
``STORE`` is tagged only in store-lookup queries), store names and phrasings
held out of training (:func:`held_out_stores`, :func:`held_out_templates`:
they occur only in dev/test), and more
typos (also inside entities) and all-lowercase queries. The default split is
unchanged by the option.
"""
import random
import re
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import srsly

STORE = "STORE"
PRODUCT = "PRODUCT"
INTENTS = ("store_lookup", "product_search", "add_to_cart", "order_status", "return_item")

# Real US places that are also common words, fruits or products.
# (store location, products that share the word(s))
AMBIGUOUS_STORES: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("orange", ("orange", "oranges", "orange juice", "blood oranges")),  # Orange, CA
    ("plum", ("plum", "plums", "plum jam")),  # Plum, PA
    ("walnut", ("walnut", "walnuts", "walnut oil")),  # Walnut, CA
    ("mango", ("mango", "mangoes", "mango salsa")),  # Mango, FL
    ("rice", ("rice", "brown rice", "jasmine rice")),  # Rice, MN
    ("apple valley", ("apples", "apple", "apple juice")),  # Apple Valley, CA/MN
    ("lemon grove", ("lemons", "lemon", "lemonade")),  # Lemon Grove, CA
    ("cherry hill", ("cherries", "cherry pie")),  # Cherry Hill, NJ
    ("sugar land", ("sugar", "brown sugar")),  # Sugar Land, TX
    ("grapevine", ("grapes", "grape jelly")),  # Grapevine, TX
    ("olive branch", ("olive oil", "olives")),  # Olive Branch, MS
    ("peachtree city", ("peaches", "peach yogurt")),  # Peachtree City, GA
    ("walnut creek", ("walnuts",)),  # Walnut Creek, CA
    ("orange park", ("oranges",)),  # Orange Park, FL
    ("pearland", ("pears",)),  # Pearland, TX
    ("coconut creek", ("coconut water", "coconuts")),  # Coconut Creek, FL
    ("mint hill", ("mint tea", "mint")),  # Mint Hill, NC
    ("pepper pike", ("black pepper", "peppers")),  # Pepper Pike, OH
    ("cocoa", ("cocoa", "hot cocoa")),  # Cocoa, FL
)
PLAIN_STORES = (
    "san jose", "austin", "boston", "denver", "columbus", "fresno", "tampa", "mesa",
    "plano", "irvine", "naperville", "bellevue", "saint paul", "raleigh", "tucson",
    "omaha", "madison", "reno", "boise", "chandler", "durham", "el paso",
)
PLAIN_PRODUCTS = (
    "paper towels", "milk", "bread", "eggs", "laptop", "headphones", "dish soap",
    "coffee", "diapers", "a phone charger", "batteries", "shampoo", "printer ink",
    "running shoes", "a desk lamp", "yogurt", "cereal", "a blender", "toothpaste",
    "dog food", "a tv", "frozen pizza", "ground beef", "a coffee maker", "socks",
)
# Colour-like uses of the ambiguous words: whole phrase is the PRODUCT.
COLOR_WORDS = ("orange", "plum", "mango", "walnut", "olive", "cherry", "mint", "cocoa")
COLOR_ITEMS = ("sweater", "hoodie", "jacket", "dress", "scarf", "rug", "phone case", "backpack")
RETAILERS = ("target", "walmart", "costco", "kroger", "safeway", "the app", "the website")

PREFIXES = (
    ("", 40), ("hey ", 6), ("hi ", 5), ("please ", 5), ("can you ", 4), ("could you ", 3),
    ("hello ", 3), ("ok ", 2), ("um ", 2), ("quick question ", 2), ("hey there ", 2), ("excuse me ", 2),
)
SUFFIXES = (("", 50), (" please", 6), (" thanks", 5), (" thank you", 3), ("?", 8), (" asap", 1), (" pls", 2))

# Templates: {store} -> STORE; {product}, {product2}, {item}, {colored}
# ("orange sweater") -> PRODUCT; {place} / {word} ("in orange") / {retailer} /
# {num} -> unlabelled.
TEMPLATES: Dict[str, Tuple[str, ...]] = {
    "store_lookup": (
        "what time does the {store} store open",
        "what time does the {store} store close today",
        "is the {store} store open on sunday",
        "store hours for {store}",
        "hours of the {store} location",
        "when does {store} close tonight",
        "i want to pick up my order at the {store} store",
        "pickup my order at {store} store",
        "can i do curbside pickup at {store}",
        "directions to the {store} store",
        "how do i get to your {store} store",
        "what is the address of the {store} store",
        "phone number for the {store} store",
        "call the {store} location",
        "is there a pharmacy at the {store} store",
        "does the {store} store have a garden center",
        "find the {store} store",
        "{store} store hours",
        "at the {store} store what are the hours",
        "is {store} open right now",
        "set {store} as my preferred store",
        "how far is the {store} store from me",
        "is the {store} store open on christmas eve",
        "where exactly is your {store} location",
        "ship my order to the {store} store for pickup",
        "change my pickup store to {store}",
        "is the {store} store closed for the holiday",
        "where is the closest store",
        "find a store near me",
        "which stores are open late tonight",
    ),
    "product_search": (
        "do you sell {product}",
        "do you have {product} in stock",
        "show me {product}",
        "how much are {product}",
        "price of {product}",
        "i am looking for {product}",
        "find {product} under {num} dollars",
        "are {product} on sale this week",
        "search for organic {product}",
        "what brands of {product} do you carry",
        "cheapest {product} you have",
        "do you have {product} from {place}",
        "is {product} cheaper here than at {retailer}",
        "looking for {product} like the ones at {retailer}",
        "do you have this {item} in {word}",
        "show me the {word} one",
    ),
    "add_to_cart": (
        "add {product} to my cart",
        "put {num} {product} in my cart",
        "add {num} bags of {product} to the cart",
        "i want to buy {product}",
        "buy {product}",
        "buy {product} at {retailer}",
        "order some {product} for me",
        "throw {product} in my basket",
        "add another {product}",
        "can i get {product} added to my order",
        "add {product} to the cart for delivery to {place}",
        "i need {product} and {product2}",
        "add the {colored} to my cart",
    ),
    "order_status": (
        "where is my order",
        "where is my {product} order",
        "has my order shipped yet",
        "track my package",
        "when will my {product} arrive",
        "is my order to {place} delivered",
        "status of order number {num}",
        "my {product} has not arrived",
        "did my order ship to {place} yet",
        "when does my delivery get here",
        "check the status of my {product} delivery",
        "why is my order late",
    ),
    "return_item": (
        "i want to return {product}",
        "return the {product} i bought",
        "how do i return {product}",
        "the {product} were bad i want a refund",
        "refund my {product} order",
        "can i send back the {product}",
        "start a return for order {num}",
        "my {product} arrived damaged",
        "return policy for {product}",
        "i need to exchange the {colored}",
        "return the {colored} it does not fit",
        "return {product} i ordered to {place}",
        "i got the wrong {product} please refund",
    ),
}

# ---- the hard split (generate(..., hard=True)) ----------------------------
# More real US places that share a word with a product (name, products).
HARD_EXTRA_AMBIGUOUS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("mayo", ("mayo", "light mayo")),  # Mayo, FL
    ("turkey", ("turkey", "ground turkey", "turkey breast")),  # Turkey, TX
    ("ham lake", ("ham", "honey ham")),  # Ham Lake, MN
    ("cranberry", ("cranberries", "cranberry juice")),  # Cranberry Township, PA
    ("strawberry", ("strawberries", "strawberry jam")),  # Strawberry, AZ
    ("almond", ("almonds", "almond milk")),  # Almond, WI
    ("tea", ("tea", "green tea", "iced tea")),  # Tea, SD
    ("lima", ("lima beans",)),  # Lima, OH
    ("chili", ("chili", "chili powder")),  # Chili, NY
    ("salt lake city", ("salt", "sea salt")),  # Salt Lake City, UT
    ("sugar hill", ("sugar", "powdered sugar")),  # Sugar Hill, GA
    ("honey brook", ("honey",)),  # Honey Brook, PA
    ("egg harbor", ("eggs", "egg whites")),  # Egg Harbor, NJ
    ("oyster bay", ("oysters",)),  # Oyster Bay, NY
    ("soda springs", ("soda", "club soda")),  # Soda Springs, ID
    ("avocado heights", ("avocados", "avocado oil")),  # Avocado Heights, CA
    ("orange city", ("oranges", "orange juice")),  # Orange City, FL
    ("hershey", ("hershey bars", "hershey kisses")),  # Hershey, PA
    ("jersey city", ("jersey", "soccer jersey")),  # Jersey City, NJ
    ("canon city", ("canon camera",)),  # Canon City, CO
    ("dell rapids", ("dell laptop",)),  # Dell Rapids, SD
    ("mobile", ("mobile phone", "mobile hotspot")),  # Mobile, AL
)
HARD_AMBIGUOUS_STORES = AMBIGUOUS_STORES + HARD_EXTRA_AMBIGUOUS
HARD_PLAIN_STORES = PLAIN_STORES + ("phoenix", "dallas", "tulsa", "spokane", "akron", "provo", "fargo", "salem")
# store-like words used as plain words (colours), unlabelled in "in {word}"
HARD_COLOR_WORDS = COLOR_WORDS + ("cranberry", "almond", "avocado", "turkey red", "salt and pepper")
# Share of each kind of store name, and of each intent's templates, that never
# occurs in train (dev/test only), and the share of dev/test store/place names
# and templates drawn from the held-out ones.
HARD_HOLDOUT_FRAC = 0.25
HARD_HELD_OUT_SHARE = 0.5
# Extra templates: short store queries without the word "store", and
# non-store queries that name a store or a place (unlabelled there).
HARD_EXTRA_TEMPLATES: Dict[str, Tuple[str, ...]] = {
    "store_lookup": (
        "{store} hours",
        "{store} hours today",
        "{store} open sunday",
        "is {store} open",
        "is {store} open late",
        "how late is {store} open",
        "when does {store} open tomorrow",
        "{store} location",
        "directions to {store}",
        "pick up at {store}",
        "pick up my order in {store}",
        "going to {store} today what time do you close",
        "nearest store to {store}",
        "is the one in {store} open",
        "{store} phone number",
    ),
    "product_search": (
        "do you have {product} at the {place} store",
        "is {product} in stock at {place}",
        "how much is {product} at {place}",
        "do you carry {product} in {place}",
        "{product} price",
        "{product} near {place}",
        "do you have the {colored} in {word}",
    ),
    "add_to_cart": (
        "add {product} for pickup at the {place} store",
        "buy {product} and pick it up in {place}",
        "add {product} to my {place} pickup order",
        "add the {colored} for pickup at {place}",
    ),
    "order_status": (
        "is my {product} order ready at the {place} store",
        "did my order ship to the {place} store",
        "when will my order get to {place}",
        "is my pickup order at {place} ready",
    ),
    "return_item": (
        "can i return {product} at the {place} store",
        "return {product} to the {place} store",
        "drop off my return at {place}",
        "can i return the {colored} in {place}",
    ),
}
HARD_TEMPLATES: Dict[str, Tuple[str, ...]] = {k: v + HARD_EXTRA_TEMPLATES[k] for k, v in TEMPLATES.items()}
HARD_MULTI_RATE = 0.08
HARD_TYPO_RATE = 0.35  # queries with a typo (easy: 0.12)
HARD_SECOND_TYPO = 0.3  # of those, with a second one
HARD_ENTITY_TYPO = 0.4  # a typo may hit a STORE/PRODUCT (easy: 0.1, PRODUCT only)

_SLOT_RE = re.compile(r"\{(\w+)\}")
_NUMS = ("2", "3", "5", "10", "12", "20", "two", "three", "a dozen", "48213", "7731")


def _weighted(rng: random.Random, options: Sequence[Tuple[str, int]]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options], k=1)[0]


def _pick_store(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return rng.choice(AMBIGUOUS_STORES)[0]
    return rng.choice(PLAIN_STORES)


def _pick_product(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.6:
        return rng.choice(rng.choice(AMBIGUOUS_STORES)[1])
    if r < 0.7:
        return f"{rng.choice(COLOR_WORDS)} {rng.choice(COLOR_ITEMS)}"
    return rng.choice(PLAIN_PRODUCTS)


def _pick_place(rng: random.Random) -> str:
    """An untagged place name (delivery address / origin): never a STORE."""
    return _pick_store(rng)


def _pick_color(rng: random.Random) -> str:
    return rng.choice(COLOR_WORDS)


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:  # swap
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == 1:  # drop
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]  # double


def _render(
    template: str,
    rng: random.Random,
    pick_store: Callable[[random.Random], str] = _pick_store,
    pick_product: Callable[[random.Random], str] = _pick_product,
    pick_place: Callable[[random.Random], str] = _pick_place,
    pick_color: Callable[[random.Random], str] = _pick_color,
) -> List[Tuple[str, Optional[str]]]:
    """Fill a template into (text, label) pieces."""
    pieces: List[Tuple[str, Optional[str]]] = []
    pos = 0
    for m in _SLOT_RE.finditer(template):
        if m.start() > pos:
            pieces.append((template[pos:m.start()], None))
        slot = m.group(1)
        if slot == "store":
            pieces.append((pick_store(rng), STORE))
        elif slot in ("product", "product2"):
            pieces.append((pick_product(rng), PRODUCT))
        elif slot == "place":
            pieces.append((pick_place(rng), None))
        elif slot == "retailer":
            pieces.append((rng.choice(RETAILERS), None))
        elif slot == "num":
            pieces.append((rng.choice(_NUMS), None))
        elif slot == "word":
            pieces.append((pick_color(rng), None))
        elif slot == "colored":
            pieces.append((f"{pick_color(rng)} {rng.choice(COLOR_ITEMS)}", PRODUCT))
        elif slot == "item":
            pieces.append((rng.choice(COLOR_ITEMS), PRODUCT))
        else:  # pragma: no cover - template bug
            raise ValueError(f"unknown slot {slot!r} in template {template!r}")
        pos = m.end()
    if pos < len(template):
        pieces.append((template[pos:], None))
    return pieces


def _apply_typo(
    pieces: List[Tuple[str, Optional[str]]],
    rng: random.Random,
    entity_ok: bool,
    entity_labels: Tuple[str, ...] = (PRODUCT,),
) -> None:
    candidates = [
        k for k, (text, label) in enumerate(pieces)
        if (label is None or (entity_ok and label in entity_labels)) and any(len(w) >= 4 for w in text.split())
    ]
    if not candidates:
        return
    k = rng.choice(candidates)
    text, label = pieces[k]
    words = text.split(" ")
    idx = [j for j, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not idx:
        return
    j = rng.choice(idx)
    words[j] = _typo(words[j], rng)
    pieces[k] = (" ".join(words), label)


def _case(text: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.7:
        return text
    if r < 0.82:  # Title Case (length preserving)
        return " ".join(w[:1].upper() + w[1:] for w in text.split(" "))
    if r < 0.9:
        return text.upper()
    return text[:1].upper() + text[1:]


def _to_record(pieces: List[Tuple[str, Optional[str]]], intents: List[str]) -> dict:
    text = ""
    spans = []
    for piece, label in pieces:
        if label is not None:
            spans.append({"start": len(text), "end": len(text) + len(piece), "label": label})
        text += piece
    return {"text": text, "spans": spans, "intents": intents}


def _one(rng: random.Random) -> dict:
    r = rng.random()
    if r < 0.06:  # multi-intent: store_lookup + a product question
        a = _render(rng.choice(TEMPLATES["store_lookup"]), rng)
        b = _render(rng.choice(TEMPLATES["product_search"][:6]), rng)
        pieces = a + [(rng.choice((" and ", " also ", ", and ")), None)] + b
        intents = ["store_lookup", "product_search"]
    else:
        intent = "store_lookup" if r < 0.45 else rng.choice(INTENTS[1:])
        pieces = _render(rng.choice(TEMPLATES[intent]), rng)
        intents = [intent]
    pieces = [(_weighted(rng, PREFIXES), None)] + pieces + [(_weighted(rng, SUFFIXES), None)]
    if rng.random() < 0.12:
        _apply_typo(pieces, rng, entity_ok=rng.random() < 0.1)
    rec = _to_record(pieces, intents)
    cased = _case(rec["text"], rng)
    assert len(cased) == len(rec["text"])
    rec["text"] = cased
    return rec


def held_out_stores(seed: int = 0) -> Tuple[str, ...]:
    """Store names of the hard split that occur only in dev/test, never in
    train: a seeded, deterministic quarter of the ambiguous and of the plain
    names (sorted)."""
    rng = random.Random(f"store-lookup-hard-held-out-{seed}")
    ambiguous = [name for name, _ in HARD_AMBIGUOUS_STORES]
    k_amb = max(1, round(HARD_HOLDOUT_FRAC * len(ambiguous)))
    k_plain = max(1, round(HARD_HOLDOUT_FRAC * len(HARD_PLAIN_STORES)))
    return tuple(sorted(rng.sample(ambiguous, k_amb) + rng.sample(list(HARD_PLAIN_STORES), k_plain)))


def held_out_templates(seed: int = 0) -> Dict[str, Tuple[str, ...]]:
    """Templates (phrasings) of the hard split that occur only in dev/test:
    a seeded, deterministic quarter of each intent's templates."""
    rng = random.Random(f"store-lookup-hard-held-out-templates-{seed}")
    return {
        intent: tuple(sorted(rng.sample(list(templates), max(1, round(HARD_HOLDOUT_FRAC * len(templates))))))
        for intent, templates in HARD_TEMPLATES.items()
    }


class _HardPools:
    """The hard split's pickers: train draws templates, store and place names
    from the seen ones only; dev/test draw half of them from the held-out ones."""

    def __init__(self, held_out: Sequence[str], held_out_templates: Dict[str, Tuple[str, ...]]):
        held = set(held_out)
        self.templates = {
            intent: (
                [t for t in templates if t not in held_out_templates[intent]],
                list(held_out_templates[intent]),
            )
            for intent, templates in HARD_TEMPLATES.items()
        }
        self.seen = (
            [n for n, _ in HARD_AMBIGUOUS_STORES if n not in held],
            [n for n in HARD_PLAIN_STORES if n not in held],
        )
        self.held = (
            [n for n, _ in HARD_AMBIGUOUS_STORES if n in held],
            [n for n in HARD_PLAIN_STORES if n in held],
        )
        self.products = [p for _, ps in HARD_AMBIGUOUS_STORES for p in ps]
        self.eval_phase = False

    def template(self, intent: str, rng: random.Random, among: Optional[Sequence[str]] = None) -> str:
        seen, held = self.templates[intent]
        if among is not None:
            seen, held = [t for t in seen if t in among], [t for t in held if t in among]
        if self.eval_phase and held and rng.random() < HARD_HELD_OUT_SHARE:
            return rng.choice(held)
        return rng.choice(seen)

    def store(self, rng: random.Random) -> str:
        ambiguous, plain = self.seen
        if self.eval_phase and rng.random() < HARD_HELD_OUT_SHARE:
            ambiguous, plain = self.held
        if rng.random() < 0.7 and ambiguous:
            return rng.choice(ambiguous)
        return rng.choice(plain or ambiguous)

    def product(self, rng: random.Random) -> str:
        r = rng.random()
        if r < 0.6:
            return rng.choice(self.products)
        if r < 0.7:
            return f"{rng.choice(HARD_COLOR_WORDS)} {rng.choice(COLOR_ITEMS)}"
        return rng.choice(PLAIN_PRODUCTS)

    def render(self, template: str, rng: random.Random) -> List[Tuple[str, Optional[str]]]:
        return _render(template, rng, self.store, self.product, self.store, self.color)

    def color(self, rng: random.Random) -> str:
        return rng.choice(HARD_COLOR_WORDS)


def _case_hard(text: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.85:  # all lowercase, as most typed queries are (easy: 0.7)
        return text
    if r < 0.92:
        return text[:1].upper() + text[1:]
    if r < 0.97:
        return " ".join(w[:1].upper() + w[1:] for w in text.split(" "))
    return text.upper()


def _one_hard(rng: random.Random, pools: _HardPools) -> dict:
    r = rng.random()
    if r < HARD_MULTI_RATE:
        a = pools.render(pools.template("store_lookup", rng), rng)
        b = pools.render(pools.template("product_search", rng, among=TEMPLATES["product_search"][:6]), rng)
        pieces = a + [(rng.choice((" and ", " also ", ", and ")), None)] + b
        intents = ["store_lookup", "product_search"]
    else:
        intent = "store_lookup" if r < 0.45 else rng.choice(INTENTS[1:])
        pieces = pools.render(pools.template(intent, rng), rng)
        intents = [intent]
    pieces = [(_weighted(rng, PREFIXES), None)] + pieces + [(_weighted(rng, SUFFIXES), None)]
    if rng.random() < HARD_TYPO_RATE:
        for _ in range(2 if rng.random() < HARD_SECOND_TYPO else 1):
            _apply_typo(pieces, rng, entity_ok=rng.random() < HARD_ENTITY_TYPO, entity_labels=(PRODUCT, STORE))
    rec = _to_record(pieces, intents)
    cased = _case_hard(rec["text"], rng)
    assert len(cased) == len(rec["text"])
    rec["text"] = cased
    return rec


def _check(rec: dict, nlp) -> None:
    """Raise if a span does not align with spaCy's English tokenizer."""
    doc = nlp.make_doc(rec["text"])
    for sp in rec["spans"]:
        if doc.char_span(sp["start"], sp["end"], alignment_mode="strict") is None:
            raise ValueError(f"generated span {sp} misaligned in {rec['text']!r}")
        piece = rec["text"][sp["start"]:sp["end"]]
        if piece != piece.strip() or not piece:
            raise ValueError(f"generated span {sp} has whitespace in {rec['text']!r}")


def _n_train(n: int, dev_frac: float, test_frac: float) -> int:
    return n - int(round(n * dev_frac)) - int(round(n * test_frac))


def generate(n: int = 3000, seed: int = 0, hard: bool = False, n_train: Optional[int] = None) -> List[dict]:
    """Generate ``n`` unique records (JSONL format), deterministic for ``seed``.

    ``hard``: the harder split (see the module docstring). Its first
    ``n_train`` records (default: the 70% that :func:`write_splits` makes the
    train split) never name a store of :func:`held_out_stores` nor use a
    template of :func:`held_out_templates`; the rest draw half of their
    templates and of their store and place names from those."""
    import spacy

    if n_train is None:
        n_train = _n_train(n, 0.1, 0.2)
    if not 0 <= n_train <= n:
        raise ValueError(f"n_train must be in [0, n={n}], got {n_train}")
    nlp = spacy.blank("en")
    rng = random.Random(seed)
    pools = _HardPools(held_out_stores(seed), held_out_templates(seed)) if hard else None
    seen = set()
    records: List[dict] = []
    attempts = 0
    while len(records) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise RuntimeError(f"could not generate {n} unique records (got {len(records)})")
        if pools is None:
            rec = _one(rng)
        else:
            pools.eval_phase = len(records) >= n_train
            rec = _one_hard(rng, pools)
        n_words = len(rec["text"].split())
        if not 3 <= n_words <= 15 or rec["text"].lower() in seen:
            continue
        _check(rec, nlp)
        seen.add(rec["text"].lower())
        records.append(rec)
    return records


def write_splits(
    out_dir: Union[str, Path],
    n: int = 3000,
    seed: int = 0,
    dev_frac: float = 0.1,
    test_frac: float = 0.2,
    hard: bool = False,
) -> Dict[str, int]:
    """Write train.jsonl / dev.jsonl / test.jsonl; returns {split: n_records}.
    ``hard``: the harder split (store names of :func:`held_out_stores` only
    in dev/test)."""
    if not (0 <= dev_frac < 1 and 0 <= test_frac < 1 and dev_frac + test_frac < 1):
        raise ValueError("dev_frac and test_frac must be in [0, 1) and sum to < 1")
    n_train = _n_train(n, dev_frac, test_frac)
    records = generate(n, seed, hard=hard, n_train=n_train)
    n_test = int(round(n * test_frac))
    splits = {
        "train": records[:n_train],
        "dev": records[n_train: n - n_test],
        "test": records[n - n_test:],
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, recs in splits.items():
        srsly.write_jsonl(out_dir / f"{name}.jsonl", recs)
    return {name: len(recs) for name, recs in splits.items()}
