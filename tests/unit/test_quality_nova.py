"""bench/nova.py: the re-ranked pipeline reads MovieLens's catalog the way a shop's is read."""

from __future__ import annotations

import numpy as np

from bench.evaluation import interaction_matrix
from bench.movielens import Catalog
from bench.nova import PIPELINE_MODELS, RerankedPipeline, catalog_groups_of
from deployments.ranking import features

GENRES = (
    frozenset({"Drama"}),
    frozenset({"Drama", "War"}),
    frozenset({"Comedy"}),
    frozenset({"Comedy", "Drama"}),
)
TITLES = ("Star Trek: Generations", "Star Trek IV", "Kolya", "Heat")
CATALOG = Catalog(genres=GENRES, released=np.array([8.2e8, 8.5e8, np.nan, 8.8e8]), titles=TITLES)


def test_als_groups_are_the_genres_and_the_words_titles_share() -> None:
    groups = catalog_groups_of(CATALOG)
    members = sorted(np.flatnonzero(row).tolist() for row in groups.toarray())
    # Comedy (2, 3), "star" and "trek" (0, 1); Drama holds 3 of the 4 films, over the half a
    # group may hold; War, "generations", "kolya" and "heat" hold one film each, and "iv" is
    # too short to be a word.
    assert members == [[0, 1], [0, 1], [2, 3]], members


def test_genres_are_collections_and_release_dates_the_creation_time() -> None:
    train = interaction_matrix(np.array([0, 0, 1]), np.array([0, 2, 1]), 2, 4)
    pipeline = RerankedPipeline(PIPELINE_MODELS, {"ease": 1.0}, 0, catalog=CATALOG)
    frame = pipeline._product_frame(train)
    assert frame.collections.shape == (4, 3)  # Drama, War, Comedy
    assert frame.collections.sum(axis=1).A1.tolist() == [1, 2, 1, 2]
    assert np.array_equal(frame.created, CATALOG.released, equal_nan=True)
    # User 0 saw a drama and a comedy: the comedy-drama (3) fits their history better than the
    # war drama (1), and is newer.
    rows = features.Rows(
        query=np.array([0, 0]),
        item=np.array([1, 3]),
        base=np.array([1.0, 0.5]),
        sources={},
        anchor=np.array([-1]),
        session=train[[0]],
        device=np.array([np.nan]),
    )
    x = features.matrix(frame, rows, 8.8e8, ())
    column = {name: i for i, name in enumerate(features.names(()))}
    affinity = x[:, column["session_affinity"]]
    assert affinity[1] > affinity[0] > 0
    age = x[:, column["age_days"]]
    assert age[0] > age[1] == 0.0


def test_without_a_catalog_the_frame_is_bare() -> None:
    train = interaction_matrix(np.array([0]), np.array([1]), 1, 4)
    frame = RerankedPipeline(PIPELINE_MODELS, {"ease": 1.0}, 0)._product_frame(train)
    assert frame.collections.shape == (4, 0)
    assert np.isnan(frame.created).all()
