"""Rebuilds the public field-evaluation sets in classifier/datasets/ from their sources.

    python scripts/build_field_sets.py BANKING77_TEST_CSV ISARCASM_TRAIN_CSV ISARCASM_TEST_A_CSV

The sources (see classifier/datasets/SOURCES.md for repositories, commits and licences) are not
part of the project; this script records exactly what was kept from them and how it was labelled.
field_posts.jsonl is written by hand and is not rebuilt here.
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "classifier" / "datasets"

# Banking77 intents whose queries report that the service failed the customer (money missing, a
# payment or card refused, an unexpected charge, something late): labelled complaints. The X-CI
# benchmark labels a question about a problem as a complaint, and so do we.
BANKING_COMPLAINT = (
    "Refund_not_showing_up", "balance_not_updated_after_bank_transfer",
    "balance_not_updated_after_cheque_or_cash_deposit", "card_arrival", "card_not_working",
    "card_payment_wrong_exchange_rate", "card_swallowed", "cash_withdrawal_charge", "declined_card_payment",
    "declined_cash_withdrawal", "declined_transfer", "extra_charge_on_statement", "failed_transfer",
    "pending_cash_withdrawal", "pending_top_up", "top_up_failed", "top_up_reverted", "transaction_charged_twice",
    "transfer_not_received_by_recipient", "unable_to_verify_identity", "virtual_card_not_working",
    "wrong_amount_of_cash_received", "wrong_exchange_rate_for_cash_withdrawal",
)
# Intents that ask how something works or request information, with nothing gone wrong: not complaints.
BANKING_NOT = (
    "activate_my_card", "age_limit", "atm_support", "automatic_top_up", "card_about_to_expire", "card_acceptance",
    "change_pin", "country_support", "disposable_card_limits", "edit_personal_details", "exchange_charge",
    "exchange_rate", "exchange_via_app", "fiat_currency_support", "get_disposable_virtual_card", "get_physical_card",
    "getting_spare_card", "getting_virtual_card", "order_physical_card", "receiving_money",
    "supported_cards_and_currencies", "top_up_by_bank_transfer_charge", "top_up_by_cash_or_cheque", "top_up_limits",
    "transfer_into_account", "transfer_timing", "verify_my_identity", "verify_source_of_funds", "verify_top_up",
    "visa_or_mastercard",
)
# Every other intent is left out: fraud and loss reports (a problem, but not one the bank caused),
# the customer's own mistakes (forgotten passcode, cancelling a transfer) and intents whose queries
# mix questions with problems (contactless_not_working, card_payment_fee_charged, ...).
BANKING_PER_INTENT = 20

# iSarcasmEval rows (file, row index) labelled by us: sarcastic tweets that complain about a product,
# service or organisation a social-care team would answer (1), and sarcastic tweets about anything
# else: family, politics, other passengers, one's own mishaps (0). Tweets about flights or airlines
# are left out (the issue forbids airline-tweet data).
SARCASM_COMPLAINT = {
    "train": (24, 201, 291, 344, 407, 415, 416, 442, 454, 481, 642, 643, 733, 744, 752, 774, 781, 826),
    "testA": (2, 127, 246, 276, 488, 509, 556, 784, 989, 1169, 1185, 1323),
}
SARCASM_NOT = {
    "train": (2, 14, 33, 39, 41, 47, 78, 116, 121, 136, 143, 146, 151, 159, 177, 200, 205, 264, 282, 287, 289,
              290, 293, 328, 330, 343, 352, 376, 389, 417, 422, 439, 551, 617, 644, 667, 669, 697, 703, 716,
              720, 741, 801, 803, 813, 824, 828, 831, 859, 865),
    "testA": (87, 126, 339, 353, 354, 367, 428, 765, 896, 1341),
}


def banking(path: Path) -> list[dict]:
    by: dict[str, list[str]] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            by.setdefault(row["category"], []).append(row["text"].strip())
    missing = [c for c in BANKING_COMPLAINT + BANKING_NOT if c not in by]
    if missing:
        raise SystemExit(f"{path}: intents not found: {missing}")
    rng = random.Random(0)
    rows = []
    for label, intents in ((1, BANKING_COMPLAINT), (0, BANKING_NOT)):
        for intent in intents:
            for text in rng.sample(by[intent], BANKING_PER_INTENT):
                rows.append({"text": text, "label": label, "intent": intent})
    return rows


def sarcasm(train: Path, test_a: Path) -> list[dict]:
    tables = {}
    for name, path, col in (("train", train, "tweet"), ("testA", test_a, "text")):
        with path.open(newline="", encoding="utf-8") as fh:
            tables[name] = [(r[col], r["sarcastic"]) for r in csv.DictReader(fh)]
    rows = []
    for label, chosen in ((1, SARCASM_COMPLAINT), (0, SARCASM_NOT)):
        for name, indices in chosen.items():
            for i in indices:
                text, sarcastic = tables[name][i]
                if sarcastic != "1":
                    raise SystemExit(f"{name} row {i} is not marked sarcastic in the source")
                rows.append({"text": " ".join(text.split()), "label": label, "source_row": f"{name}:{i}"})
    return rows


def write(name: str, rows: list[dict]) -> None:
    with (OUT / name).open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"{name}: {len(rows)} rows, {sum(r['label'] for r in rows)} complaints")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    write("banking77_field.csv", banking(Path(sys.argv[1])))
    write("sarcasm_field.csv", sarcasm(Path(sys.argv[2]), Path(sys.argv[3])))
