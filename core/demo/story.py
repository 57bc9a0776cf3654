"""Synthetic credit-card traffic for the fraud story: deterministic, vectorized, about 1% fraud.

Every day is drawn from its own random stream (seed, day), so a day's transactions are the same whatever
window is asked for. From WAVE_START a wave of new customers arrives: their cards are days old (so
`card_age_days` drifts more than any other field) and they bring a fraud pattern that looks harmless to
models trained on the early months (daytime, domestic, close to home, in shops, no more than the card's usual
spend) on larger baskets (electronics, fashion, entertainment, about 200 EUR), so recall and AUC of those
models fall from month four and the amount of fraud they miss rises above anything seen before.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

STORY_START = datetime(2026, 5, 1)
STORY_DAYS = 184  # May 1 - Oct 31 2026
WAVE_START = datetime(2026, 8, 1)
TRAINING_DAYS = 61  # the labelled May-June history v1 and v2 learn from
TARGET = "is_fraud"

FEATURES: list[dict] = [
    {"name": "amount", "type": "numeric"},
    {"name": "merchant_category", "type": "categorical"},
    {"name": "hour", "type": "numeric"},
    {"name": "card_age_days", "type": "numeric"},
    {"name": "distance_from_home_km", "type": "numeric"},
    {"name": "foreign", "type": "numeric"},
    {"name": "tx_last_24h", "type": "numeric"},
    {"name": "channel", "type": "categorical"},
    {"name": "customer_age", "type": "numeric"},
    {"name": "amount_vs_avg", "type": "numeric"},
]
FEATURE_NAMES = [f["name"] for f in FEATURES]

CATEGORIES = np.array(["grocery", "restaurant", "fuel", "travel", "electronics", "fashion", "entertainment",
                       "online_services"])
_CATEGORY_P = np.array([0.27, 0.18, 0.12, 0.06, 0.08, 0.11, 0.08, 0.10])
_CATEGORY_RISK = np.array([-0.4, -0.3, -0.2, 0.7, 0.8, 0.2, 0.0, 0.5])
_CATEGORY_AMOUNT = np.array([3.4, 3.3, 3.8, 5.3, 5.0, 4.2, 3.6, 3.2])  # log-median amount per category

CHANNELS = np.array(["pos", "online", "atm", "contactless"])
_CHANNEL_P = np.array([0.34, 0.30, 0.06, 0.30])
_CHANNEL_RISK = np.array([0.0, 0.8, 0.4, -0.5])

# Card use through the day (sums to 1): quiet nights, a lunch and an evening peak.
_HOUR_P = np.array([8, 5, 3, 2, 2, 3, 8, 20, 38, 50, 58, 64, 72, 66, 58, 56, 58, 66, 74, 72, 60, 44, 28, 16],
                   dtype=float)
_HOUR_P /= _HOUR_P.sum()

_WAVE_SHARE = 0.45  # share of traffic from new customers once the wave has fully arrived
_WAVE_RAMP_DAYS = 14
_WAVE_FRAUD_RATE = 0.02  # new-customer fraud among the wave's transactions
_BASE_LOGIT = -7.2  # calibrated so the early months carry about 1% fraud


def _wave_share(day: datetime) -> float:
    if day < WAVE_START:
        return 0.0
    ramp = min(1.0, ((day - WAVE_START).days + 1) / _WAVE_RAMP_DAYS)
    return _WAVE_SHARE * ramp


def _day(day: datetime, *, per_day: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, day.toordinal()])
    n = per_day
    cat = rng.choice(len(CATEGORIES), size=n, p=_CATEGORY_P)
    channel = rng.choice(len(CHANNELS), size=n, p=_CHANNEL_P)
    hour = rng.choice(24, size=n, p=_HOUR_P)
    seconds = hour * 3600 + rng.integers(0, 3600, size=n)
    amount = np.exp(_CATEGORY_AMOUNT[cat] + rng.normal(0.0, 0.8, size=n))
    foreign = (rng.random(n) < np.where(cat == 3, 0.30, 0.025)).astype(int)
    distance = np.where(foreign == 1, rng.lognormal(6.6, 0.8, size=n), rng.lognormal(1.6, 1.0, size=n))
    card_age = np.clip(rng.lognormal(6.6, 0.9, size=n), 1, 7300)
    tx_24h = rng.poisson(2.2, size=n) + 1
    customer_age = np.clip(rng.normal(44, 14, size=n), 18, 92)
    amount_vs_avg = rng.lognormal(0.0, 0.45, size=n)

    # Established customers: fraud at night, abroad, far from home, on big or unusual amounts, in bursts.
    night = (hour <= 4) | (hour >= 23)
    logit = (_BASE_LOGIT + _CATEGORY_RISK[cat] + _CHANNEL_RISK[channel]
             + 1.2 * night + 1.0 * foreign + 0.15 * np.log1p(distance) + 0.3 * np.log(amount / 40.0)
             + 0.6 * np.log(amount_vs_avg + 1e-9) + 0.6 * (card_age < 60)
             # the combinations fraudsters favour, which a linear score sees only in part
             + 3.0 * (foreign & (channel == 1)) + 3.0 * (night & (amount > 150))
             + 3.2 * (tx_24h >= 7) + 3.0 * ((card_age < 180) & (amount_vs_avg > 2.0))
             + 2.5 * ((customer_age > 72) & (channel == 1)))
    fraud = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))

    # The wave: new customers with days-old cards, and a fraud pattern that looks like ordinary shopping, but for
    # a few hundred euros: the amount of fraud missed is what the business sees first.
    wave = rng.random(n) < _wave_share(day)
    card_age = np.where(wave, rng.integers(1, 46, size=n), card_age)
    fraud = np.where(wave, False, fraud)
    new_fraud = wave & (rng.random(n) < _WAVE_FRAUD_RATE)
    k = int(new_fraud.sum())
    if k:
        cat[new_fraud] = rng.choice([4, 5, 6], size=k, p=[0.3, 0.4, 0.3])
        channel[new_fraud] = rng.choice([0, 3], size=k, p=[0.5, 0.5])
        h = rng.integers(9, 20, size=k)
        hour[new_fraud] = h
        seconds[new_fraud] = h * 3600 + rng.integers(0, 3600, size=k)
        amount[new_fraud] = np.exp(rng.normal(5.3, 0.4, size=k))
        foreign[new_fraud] = 0
        distance[new_fraud] = rng.lognormal(1.0, 0.6, size=k)
        tx_24h[new_fraud] = rng.integers(1, 4, size=k)
        amount_vs_avg[new_fraud] = rng.lognormal(-0.3, 0.3, size=k)
        card_age[new_fraud] = rng.integers(1, 21, size=k)
        customer_age[new_fraud] = rng.uniform(19, 32, size=k)
        fraud = fraud | new_fraud

    order = np.argsort(seconds, kind="stable")
    return {
        "seconds": seconds[order],
        "amount": np.round(amount[order], 2),
        "merchant_category": CATEGORIES[cat[order]],
        "hour": hour[order].astype(int),
        "card_age_days": card_age[order].astype(int),
        "distance_from_home_km": np.round(distance[order], 1),
        "foreign": foreign[order].astype(int),
        "tx_last_24h": tx_24h[order].astype(int),
        "channel": CHANNELS[channel[order]],
        "customer_age": customer_age[order].astype(int),
        "amount_vs_avg": np.round(amount_vs_avg[order], 3),
        TARGET: fraud[order].astype(int),
    }


def transactions(*, start: datetime, days: int, per_day: int = 1500, seed: int = 7) -> pd.DataFrame:
    """`days` days of card transactions from `start` (midnight), `per_day` a day, with the is_fraud label."""
    if days < 0 or per_day < 0:
        raise ValueError("days and per_day must not be negative")
    start = datetime(start.year, start.month, start.day)
    parts = [_day(start + timedelta(days=d), per_day=per_day, seed=seed) for d in range(days)]
    columns = ["transaction_id", "ts", *FEATURE_NAMES, TARGET]
    if not parts:
        return pd.DataFrame({c: [] for c in columns})
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    day_index = np.repeat(np.arange(days), per_day)
    base = np.datetime64(start, "s")
    data["ts"] = base + (day_index * 86400 + data.pop("seconds")).astype("timedelta64[s]")
    stamps = np.repeat([(start + timedelta(days=d)).strftime("%Y%m%d") for d in range(days)], per_day)
    seq = np.tile(np.arange(per_day), days).astype(str)
    data["transaction_id"] = np.char.add(np.char.add(f"tx{seed}-", stamps), np.char.add("-", np.char.zfill(seq, 5)))
    frame = pd.DataFrame(data)[columns]
    frame["ts"] = pd.to_datetime(frame["ts"]).astype("datetime64[ns]")
    return frame


def label_arrival(frame: pd.DataFrame, *, seed: int = 11) -> pd.Series:
    """When each transaction's label arrives: 3 to 10 days after it, fixed per transaction id."""
    key = f"{seed:016d}"[-16:]
    hashed = pd.util.hash_pandas_object(frame["transaction_id"], index=False, hash_key=key).to_numpy()
    fraction = (hashed >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    delay = pd.to_timedelta(np.round((3.0 + 7.0 * fraction) * 86400), unit="s")
    return pd.Series(pd.to_datetime(frame["ts"]).to_numpy() + delay.to_numpy(), index=frame.index, name="label_at")


def training_extract(seed: int = 101) -> pd.DataFrame:
    """The labelled early-months history v1 and v2 learn from: a separate draw, so no overlap with traffic."""
    return transactions(start=STORY_START, days=TRAINING_DAYS, seed=seed)
