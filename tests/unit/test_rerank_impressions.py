"""Re-ranker training rows from impressions: what was shown, in order, labelled by what the
shopper did next under the same ranking id, with the shown position as a feature."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
from scipy import sparse

from training import config as training_config
from training import data as data_mod
from training import pipeline

DAY = 86_400.0
T = 1_800_000_000.0


def events(rows: list[tuple[str, str, str, float, str | None]]) -> pa.Table:
    user, pid, kind, ts, rid = zip(*rows, strict=True)
    return pa.table(
        {
            "user": pa.array(user),
            "product_id": pa.array(pid),
            "kind": pa.array(kind),
            "ts": pa.array(ts, pa.float64()),
            "ranking_id": pa.array(rid, pa.string()),
            "device": pa.array(["mobile"] * len(user)),
        }
    )


def test_outcomes_join_carts_and_purchases_to_the_click_before_them() -> None:
    table = events(
        [
            ("u1", "p2", "click", T, "r1"),
            ("u1", "p2", "cart", T + 60, None),  # after the click: the click's outcome
            ("u1", "p9", "cart", T + 60, None),  # another product: not this ranking's
            ("u2", "p3", "click", T, "r2"),
            ("u2", "p3", "purchase", T + 2 * DAY, None),  # too late to count
            ("u3", "p4", "purchase", T, "r3"),  # carries its ranking id itself
            ("u4", "p2", "cart", T + 60, None),  # never clicked
            ("u1", "p5", "click", T + 10, "r1"),
        ]
    )
    assert pipeline.outcomes(table) == {
        ("r1", "p2"): 2.0,
        ("r1", "p5"): 1.0,
        ("r2", "p3"): 1.0,
        ("r3", "p4"): 3.0,
    }


def test_impressions_become_rows_with_positions_and_labels() -> None:
    history = [
        (f"u{n}", f"p{(n + k) % 6}", "view", T - DAY + 60 * k, None)
        for n in range(30)
        for k in range(4)
    ]
    follow = [("u1", "p4", "click", T, "r.a"), ("u1", "p4", "cart", T + 30, None)]
    impressions = pa.table(
        {
            "ranking_id": pa.array(["r.a", "r.b"]),
            "user": pa.array(["u1", "u2"]),
            "ts": pa.array([T - 5, T - 4]),
            "device": pa.array(["desktop", None], pa.string()),
            "products": pa.array([["p3", "p4", "unknown", "p5"], ["p0", "p1"]]),
        }
    )
    shop = data_mod.ShopData(
        "s",
        data_mod.Window.ending(datetime.fromtimestamp(T, UTC), 30),
        events(history + follow),
        impressions,
        pa.table({"basket": pa.array([], pa.string()), "product_id": pa.array([], pa.string())}),
    )
    config = training_config.load()
    prepared = pipeline._prepare(shop, config, T, None)
    n = prepared.train.n_items
    found = pipeline._impressions(shop, prepared, {"cf": sparse.identity(n, format="csr")}, 10)
    assert found is not None
    rows, labels = found
    items = prepared.train.items[rows.item].tolist()
    assert items == ["p3", "p4", "p5", "p0", "p1"]  # a product the models do not know is left out
    assert rows.position is not None
    assert rows.position.tolist() == [1.0, 2.0, 4.0, 1.0, 2.0]  # as shown
    assert labels.tolist() == [0.0, 2.0, 0.0, 0.0, 0.0]  # clicked, then carted
    assert rows.query.tolist() == [0, 0, 0, 1, 1]
    assert rows.device.tolist()[0] == 0.0 and rows.device.tolist()[1] == 1.0  # u2: last seen
    assert np.all(rows.base[:3] == [1.0, 0.5, 0.25])
