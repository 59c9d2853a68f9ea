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
"""
import random
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

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


def _render(template: str, rng: random.Random) -> List[Tuple[str, Optional[str]]]:
    """Fill a template into (text, label) pieces."""
    pieces: List[Tuple[str, Optional[str]]] = []
    pos = 0
    for m in _SLOT_RE.finditer(template):
        if m.start() > pos:
            pieces.append((template[pos:m.start()], None))
        slot = m.group(1)
        if slot == "store":
            pieces.append((_pick_store(rng), STORE))
        elif slot in ("product", "product2"):
            pieces.append((_pick_product(rng), PRODUCT))
        elif slot == "place":
            pieces.append((_pick_place(rng), None))
        elif slot == "retailer":
            pieces.append((rng.choice(RETAILERS), None))
        elif slot == "num":
            pieces.append((rng.choice(_NUMS), None))
        elif slot == "word":
            pieces.append((rng.choice(COLOR_WORDS), None))
        elif slot == "colored":
            pieces.append((f"{rng.choice(COLOR_WORDS)} {rng.choice(COLOR_ITEMS)}", PRODUCT))
        elif slot == "item":
            pieces.append((rng.choice(COLOR_ITEMS), PRODUCT))
        else:  # pragma: no cover - template bug
            raise ValueError(f"unknown slot {slot!r} in template {template!r}")
        pos = m.end()
    if pos < len(template):
        pieces.append((template[pos:], None))
    return pieces


def _apply_typo(pieces: List[Tuple[str, Optional[str]]], rng: random.Random, entity_ok: bool) -> None:
    candidates = [
        k for k, (text, label) in enumerate(pieces)
        if (label is None or (entity_ok and label == PRODUCT)) and any(len(w) >= 4 for w in text.split())
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


def _check(rec: dict, nlp) -> None:
    """Raise if a span does not align with spaCy's English tokenizer."""
    doc = nlp.make_doc(rec["text"])
    for sp in rec["spans"]:
        if doc.char_span(sp["start"], sp["end"], alignment_mode="strict") is None:
            raise ValueError(f"generated span {sp} misaligned in {rec['text']!r}")
        piece = rec["text"][sp["start"]:sp["end"]]
        if piece != piece.strip() or not piece:
            raise ValueError(f"generated span {sp} has whitespace in {rec['text']!r}")


def generate(n: int = 3000, seed: int = 0) -> List[dict]:
    """Generate ``n`` unique records (JSONL format), deterministic for ``seed``."""
    import spacy

    nlp = spacy.blank("en")
    rng = random.Random(seed)
    seen = set()
    records: List[dict] = []
    attempts = 0
    while len(records) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise RuntimeError(f"could not generate {n} unique records (got {len(records)})")
        rec = _one(rng)
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
) -> Dict[str, int]:
    """Write train.jsonl / dev.jsonl / test.jsonl; returns {split: n_records}."""
    if not (0 <= dev_frac < 1 and 0 <= test_frac < 1 and dev_frac + test_frac < 1):
        raise ValueError("dev_frac and test_frac must be in [0, 1) and sum to < 1")
    records = generate(n, seed)
    n_test = int(round(n * test_frac))
    n_dev = int(round(n * dev_frac))
    splits = {
        "train": records[: n - n_dev - n_test],
        "dev": records[n - n_dev - n_test: n - n_test],
        "test": records[n - n_test:],
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, recs in splits.items():
        srsly.write_jsonl(out_dir / f"{name}.jsonl", recs)
    return {name: len(recs) for name, recs in splits.items()}
