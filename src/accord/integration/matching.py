"""Probabilistic identity resolution: a Fellegi–Sunter model (Splink) over data frames.

Engine-level code only: records come in as data frames with Accord's canonical standardised
columns and pairs/clusters go out as data frames and dicts; the integration service stores the
model JSON, the review queue and the golden profiles. The same model runs on DuckDB (default,
in-process) and on Spark (``ACCORD_ANALYTICS_ENGINE=spark``): the model JSON holds the SQL of the
engine it was trained on and is rebuilt for the other engine from the Accord design below, with
the trained parameters carried over level by level.

Term frequencies (how common a surname, first name, city or e-mail is) are part of the model:
they are taken from the training records and stored in the model JSON, so a pair gets the same
weight from the batch run, from the incremental path and in the review queue's explanation.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import splink
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import ColumnExpression, Linker, SettingsCreator, block_on
from splink.internals.exceptions import SplinkException

logger = logging.getLogger(__name__)

ID = "unique_id"
SOURCE = "source"
NAME_COLUMNS = ("first_name", "last_name")
MATCH_COLUMNS = (
    "first_name",
    "last_name",
    "date_of_birth",
    "email",
    "phone",
    "address_line1",
    "postcode",
    "city",
    "country",
    "national_id",
)
"""Canonical columns the model may compare, in the order of the comparisons."""

TF_COLUMNS = ("first_name", "last_name", "city", "email")
"""Columns whose exact-match weight depends on how common the value is."""

# Values shared by more records than this are placeholders ("noreply@...", "+440000000000"),
# not identifiers: blocking on them alone would compare every such record with every other.
BLOCKING_VALUE_CAP = 50
_CAPPED_KEYS = {"email": "email_key", "phone": "phone_key", "national_id": "national_id_key"}
_SWAPPED_NAMES = "l.first_name = r.last_name AND l.last_name = r.first_name"

MAX_PAIRS_U = 1e6
MAX_PAIRS_EM = 5e5
DETERMINISTIC_RECALL = 0.7
MODEL_FORMAT = 1

ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class Thresholds:
    """Match probabilities: at or above ``upper`` link automatically, from ``lower`` review."""

    upper: float = 0.95
    lower: float = 0.60

    def __post_init__(self) -> None:
        if not 0.0 <= self.lower <= self.upper <= 1.0:
            raise ValueError("thresholds need 0 <= lower <= upper <= 1")


# --------------------------------------------------------------------------- engines


def engine_name() -> str:
    """The configured analytics engine: ``duckdb`` (default) or ``spark``."""
    try:
        from accord.core.settings import get_settings

        value = getattr(get_settings(), "analytics_engine", None)
    except Exception:  # settings unavailable or invalid: fall back to the raw variable
        value = None
    value = value or os.environ.get("ACCORD_ANALYTICS_ENGINE", "duckdb")
    value = str(value).strip().lower()
    if value not in ENGINES:
        raise ValueError(f"unknown analytics engine {value!r}: use one of {', '.join(ENGINES)}")
    return value


_spark_lock = threading.Lock()
_spark_session: Any = None


def spark_session() -> Any:
    """The shared local Spark session, started on first use (a JVM start costs seconds).

    Two local cores, few shuffle partitions, no adaptive re-planning (its cost outweighs its
    gain on small jobs), no UI and loopback only. If a session is already active in the process
    (a cluster deployment builds its own), ``getOrCreate`` returns that one.
    """
    global _spark_session
    with _spark_lock:
        if _spark_session is not None:
            return _spark_session
        from pyspark.sql import SparkSession
        from splink.backends.spark import similarity_jar_location

        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
        _spark_session = (
            SparkSession.builder.appName("accord-identity-resolution")
            .master("local[2]")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.default.parallelism", "2")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.jars", similarity_jar_location())
            .config("spark.sql.adaptive.enabled", "false")
            .getOrCreate()
        )
        _spark_session.sparkContext.setLogLevel("ERROR")
        return _spark_session


class _Backend:
    """One Splink database API for one operation, cleaned up afterwards."""

    def __init__(self, engine: str | None) -> None:
        self.engine = engine or engine_name()
        if self.engine not in ENGINES:
            raise ValueError(f"unknown analytics engine {self.engine!r}")
        self.dialect = self.engine  # Splink names its SQL dialects after the engines
        if self.engine == "duckdb":
            from splink import DuckDBAPI

            self.api: Any = DuckDBAPI()
        else:
            from splink import SparkAPI

            self.api = SparkAPI(
                spark_session=spark_session(),
                break_lineage_method="persist",
                num_partitions_on_repartition=2,
            )
        self._names: list[str] = []
        self._counter = 0

    def register(self, frame: pd.DataFrame, role: str) -> Any:
        self._counter += 1
        name = f"accord_{role}_{self.api.id}_{self._counter}"
        self._names.append(name)
        return self.api.register(_to_arrow(frame), table_name=name)

    def to_pandas(self, splink_frame: Any, scores_only: bool = False) -> pd.DataFrame:
        """The frame as pandas; `scores_only` keeps ids, probabilities and per-comparison
        levels and weights, leaving out the compared values (most of a million pairs' bytes)."""
        if not scores_only:
            return splink_frame.as_pandas_dataframe()
        table = splink_frame.physical_name
        if self.engine == "duckdb":
            names = [r[0] for r in self.api.duckdb_con.execute(
                f'DESCRIBE "{table}"').fetchall()]  # noqa: S608 - a Splink table name
        else:
            names = self.api.spark.table(table).columns
        keep = [n for n in names if _is_score_column(n)]
        if self.engine == "duckdb":
            columns = ", ".join(f'"{n}"' for n in keep)
            return self.api.duckdb_con.execute(
                f'SELECT {columns} FROM "{table}"').df()  # noqa: S608 - Splink's own names
        return self.api.spark.table(table).select(*keep).toPandas()

    def close(self) -> None:
        if self.engine == "duckdb":
            self.api.duckdb_con.close()
            return
        spark = self.api.spark
        names = set(self._names) | set(self.api._created_tables)
        names |= {df.physical_name for df in self.api._intermediate_table_cache.values()}
        for name in names:
            try:
                if spark.catalog.isCached(name):
                    spark.catalog.uncacheTable(name)
                spark.catalog.dropTempView(name)
            except Exception:  # already gone: nothing to release
                logger.debug("spark view %s already dropped", name)

    def __enter__(self) -> _Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- the design


def _swapped_names(column: str) -> Any:
    """Swapped first and last names are one piece of evidence, not two: the first-name
    comparison weighs it (adjusted by how common the name is, as an exact match is), the
    last-name comparison holds it neutral. Counted twice, without that adjustment, it gave
    namesakes ~32 bits and chained thousands of them at a million records."""
    level = cll.ColumnsReversedLevel(NAME_COLUMNS[0], NAME_COLUMNS[1], symmetrical=True)
    if column == NAME_COLUMNS[0]:
        return level.configure(label_for_charts="First and last names swapped",
                               tf_adjustment_column=column, tf_adjustment_weight=1.0)
    return level.configure(label_for_charts="First and last names swapped",
                           m_probability=0.5, u_probability=0.5,
                           fix_m_probability=True, fix_u_probability=True)


def _name_comparison(column: str, other: str) -> cl.CustomComparison:
    initial = (
        f"(length({column}_l) = 1 OR length({column}_r) = 1) "
        f"AND substr({column}_l, 1, 1) = substr({column}_r, 1, 1)"
    )
    return cl.CustomComparison(
        output_column_name=column,
        comparison_description=f"{column}: exact, swapped with {other}, typos, initial",
        comparison_levels=[
            cll.NullLevel(column),
            cll.ExactMatchLevel(column, term_frequency_adjustments=True),
            _swapped_names(column),
            cll.JaroWinklerLevel(column, 0.92),
            cll.JaroWinklerLevel(column, 0.80),
            cll.CustomLevel(initial, label_for_charts="Initial matches the name"),
            cll.ElseLevel(),
        ],
    )


def _dob_comparison() -> cl.CustomComparison:
    dob = "date_of_birth"
    swapped = (
        f"substr({dob}_l, 1, 4) = substr({dob}_r, 1, 4) "
        f"AND substr({dob}_l, 6, 2) = substr({dob}_r, 9, 2) "
        f"AND substr({dob}_l, 9, 2) = substr({dob}_r, 6, 2)"
    )
    return cl.CustomComparison(
        output_column_name=dob,
        comparison_description="ISO date of birth: exact, day/month swapped, one typo, year",
        comparison_levels=[
            cll.NullLevel(dob),
            cll.ExactMatchLevel(dob),
            cll.CustomLevel(swapped, label_for_charts="Day and month transposed"),
            cll.DamerauLevenshteinLevel(dob, 1).configure(
                label_for_charts="One typo or adjacent transposition"
            ),
            cll.AbsoluteDateDifferenceLevel(
                dob, input_is_string=True, threshold=1, metric="year"
            ).configure(label_for_charts="Within a year"),
            cll.ElseLevel(),
        ],
    )


def _email_comparison() -> cl.CustomComparison:
    email = ColumnExpression("email")
    local = email.regex_extract("^[^@]+")
    return cl.CustomComparison(
        output_column_name="email",
        # No "similar local part" level: local parts are mostly made of the person's name, so
        # similar ones among people with the same name are the rule, not evidence (at a million
        # records such a level chained tens of thousands of namesakes into one customer).
        comparison_description="E-mail: exact, one typo, same local part",
        comparison_levels=[
            cll.NullLevel("email"),
            cll.ExactMatchLevel("email", term_frequency_adjustments=True),
            cll.DamerauLevenshteinLevel("email", 1).configure(label_for_charts="One typo"),
            cll.ExactMatchLevel(local).configure(label_for_charts="Same local part, other domain"),
            cll.ElseLevel(),
        ],
    )


def _phone_comparison() -> cl.CustomComparison:
    last7 = ColumnExpression("phone").regex_extract("[0-9]{7}$")
    return cl.CustomComparison(
        output_column_name="phone",
        comparison_description="E.164 phone: exact, same last seven digits, one typo",
        comparison_levels=[
            cll.NullLevel("phone"),
            cll.ExactMatchLevel("phone"),
            cll.ExactMatchLevel(last7).configure(label_for_charts="Same last seven digits"),
            cll.DamerauLevenshteinLevel("phone", 1).configure(label_for_charts="One typo"),
            cll.ElseLevel(),
        ],
    )


def _comparisons(columns: Sequence[str]) -> list[Any]:
    present = set(columns)
    out: list[Any] = []
    for column in MATCH_COLUMNS:
        if column not in present:
            continue
        if column in NAME_COLUMNS:
            other = NAME_COLUMNS[1] if column == NAME_COLUMNS[0] else NAME_COLUMNS[0]
            out.append(_name_comparison(column, other))
        elif column == "date_of_birth":
            out.append(_dob_comparison())
        elif column == "email":
            out.append(_email_comparison())
        elif column == "phone":
            out.append(_phone_comparison())
        elif column == "address_line1":
            out.append(cl.JaroWinklerAtThresholds(column, [0.92, 0.80]))
        elif column == "postcode":
            out.append(cl.DamerauLevenshteinAtThresholds(column, [1]))
        elif column == "city":
            out.append(
                cl.JaroWinklerAtThresholds(column, [0.88]).configure(
                    term_frequency_adjustments=True
                )
            )
        elif column == "national_id":
            out.append(cl.DamerauLevenshteinAtThresholds(column, [1]))
        elif column == "country":
            out.append(cl.ExactMatch(column))
    return out


def _blocking_rules(columns: Sequence[str]) -> list[Any]:
    """Equi-joins only, each on a value that few records share, so the pair count stays linear.

    Single-column identifiers block through their capped key (see ``BLOCKING_VALUE_CAP``).
    """
    present = set(columns)
    candidates: list[tuple[tuple[str, ...], Any]] = [
        (("first_name", "last_name"), block_on("first_name", "last_name")),
        (("first_name", "last_name"), _SWAPPED_NAMES),
        (("last_name", "date_of_birth"), block_on("last_name", "date_of_birth")),
        (("first_name", "date_of_birth"), block_on("first_name", "date_of_birth")),
        (("email",), block_on(_CAPPED_KEYS["email"])),
        (("phone",), block_on(_CAPPED_KEYS["phone"])),
        (("national_id",), block_on(_CAPPED_KEYS["national_id"])),
        (("date_of_birth", "postcode"), block_on("date_of_birth", "postcode")),
        (("last_name", "postcode"), block_on("last_name", "postcode")),
        (("first_name", "postcode"), block_on("first_name", "postcode")),
        (("address_line1", "postcode"), block_on("address_line1", "postcode")),
    ]
    return [rule for needs, rule in candidates if present.issuperset(needs)]


def settings(
    link_type: str = "dedupe_only", columns: Iterable[str] | None = None
) -> SettingsCreator:
    """Accord's comparisons and blocking rules for the canonical columns present in the data.

    ``columns`` limits the design to columns that carry information (``train`` passes the ones
    that are filled and vary); by default every canonical column is compared.
    """
    if link_type not in ("dedupe_only", "link_only", "link_and_dedupe"):
        raise ValueError(f"unknown link type {link_type!r}")
    cols = [c for c in MATCH_COLUMNS if columns is None or c in set(columns)]
    if not cols:
        raise ValueError("no canonical column to compare")
    return SettingsCreator(
        link_type=link_type,  # type: ignore[arg-type]
        unique_id_column_name=ID,
        source_dataset_column_name=SOURCE,
        comparisons=_comparisons(cols),
        blocking_rules_to_generate_predictions=_blocking_rules(cols),
        additional_columns_to_retain=[SOURCE],
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
        max_iterations=25,
        em_convergence=0.0001,
    )


def _deterministic_rules(columns: Sequence[str]) -> list[Any]:
    present = set(columns)
    rules: list[tuple[tuple[str, ...], Any]] = [
        (
            ("first_name", "last_name", "date_of_birth"),
            block_on("first_name", "last_name", "date_of_birth"),
        ),
        (("first_name", "email"), block_on("first_name", "email")),
        (("last_name", "email"), block_on("last_name", "email")),
        (("first_name", "phone"), block_on("first_name", "phone")),
        (("national_id", "date_of_birth"), block_on("national_id", "date_of_birth")),
        (("national_id", "last_name"), block_on("national_id", "last_name")),
    ]
    return [rule for needs, rule in rules if present.issuperset(needs)]


def _em_rules(columns: Sequence[str]) -> list[tuple[frozenset[str], Any]]:
    """Candidate blocking passes for EM, each with the columns it blocks on, in order of use."""
    present = set(columns)
    rules: list[tuple[tuple[str, ...], Any]] = [
        (("first_name", "last_name"), block_on("first_name", "last_name")),
        (("date_of_birth",), block_on("date_of_birth")),
        (("email",), block_on("email")),
        (("phone",), block_on("phone")),
        (("postcode",), block_on("postcode")),
        (("national_id",), block_on("national_id")),
    ]
    return [(frozenset(needs), rule) for needs, rule in rules if present.issuperset(needs)]


def _compared_columns(column: str) -> frozenset[str]:
    """Columns a comparison reads (the name comparisons also look for swapped names)."""
    return frozenset(NAME_COLUMNS) if column in NAME_COLUMNS else frozenset({column})


# --------------------------------------------------------------------------- records


def _as_frame(records: Any) -> pd.DataFrame:
    if isinstance(records, pd.DataFrame):
        return records
    if isinstance(records, pa.Table):
        return records.to_pandas()
    if hasattr(records, "toPandas"):  # a Spark DataFrame
        return records.toPandas()
    return pd.DataFrame(list(records))


_TEXT = "string[pyarrow]"  # Arrow-backed: vectorised cleaning, zero-copy hand-over to the engines


def _clean_strings(series: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(series):  # numbers read with gaps: 1804974.0 is "1804974"
        whole = series.dropna()
        if (whole == whole.round()).all():
            series = series.astype("Int64")
    text = series.astype(_TEXT).str.strip()
    return text.mask(text == "")


def _iso_dates(series: pd.Series) -> pd.Series:
    """ISO ``YYYY-MM-DD`` strings; datetimes are cut to their date, anything else is null
    (the standardiser writes ISO dates: what it could not read is better missing than wrong)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.dt.strftime("%Y-%m-%d").astype(_TEXT)
    text = _clean_strings(series)
    day = text.str.slice(0, 10)
    rest = text.str.slice(10, 11)
    iso = day.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False) & rest.isin(["", " ", "T"])
    return day.where(iso)


def _capped(series: pd.Series) -> pd.Series:
    """The value where at most ``BLOCKING_VALUE_CAP`` records share it, else null."""
    codes = pd.factorize(series)[0] + 1  # 0 for null
    shared = np.bincount(codes)[codes]
    return series.where((codes > 0) & (shared <= BLOCKING_VALUE_CAP))


def prepare(records: Any) -> pd.DataFrame:
    """Canonical columns in a fixed shape: missing columns added empty, blanks made null,
    dates as ISO strings, plus the capped blocking keys for e-mail, phone and national id."""
    frame = _as_frame(records)
    if frame.empty and ID not in frame.columns:  # no records at all (a list with none)
        frame = pd.DataFrame({ID: pd.Series([], dtype="int64")})
    if ID not in frame.columns:
        raise ValueError(f"records need a {ID!r} column")
    out = pd.DataFrame(index=range(len(frame)))
    ids = pd.Series(frame[ID].to_numpy())
    if ids.isna().any():
        raise ValueError(f"{ID} must not be null")
    out[ID] = ids.astype("int64")
    if out[ID].duplicated().any():
        raise ValueError(f"{ID} must be unique")
    for column in (SOURCE, *MATCH_COLUMNS):
        if column not in frame.columns:
            out[column] = pd.Series(pd.NA, index=out.index, dtype=_TEXT)
            continue
        values = frame[column].reset_index(drop=True)
        out[column] = _iso_dates(values) if column == "date_of_birth" else _clean_strings(values)
    for column, key in _CAPPED_KEYS.items():
        out[key] = _capped(out[column])
    return out


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    """Explicit types: an all-null column must still be a string column on every engine."""
    schema = pa.schema(
        pa.field(c, pa.int64() if c == ID else pa.float64() if c.startswith("tf_") else pa.string())
        for c in frame.columns
    )
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def informative_columns(frame: pd.DataFrame) -> list[str]:
    """Canonical columns with at least two distinct values: the rest cannot tell records apart."""
    return [c for c in MATCH_COLUMNS if frame[c].nunique(dropna=True) >= 2]


# --------------------------------------------------------------------------- term frequencies


def _term_frequencies(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, Any]:
    """Counts of repeated values (a value seen once has frequency 1/total, like an unseen one)."""
    out: dict[str, Any] = {}
    for column in TF_COLUMNS:
        if column not in columns:
            continue
        values = frame[column].dropna()
        counts = values.value_counts()
        counts = counts[counts >= 2]
        out[column] = {
            "total": int(len(values)),
            "counts": {str(k): int(v) for k, v in counts.items()},
        }
    return out


def _tf_lookup(model: Mapping[str, Any], column: str, frames: Sequence[pd.DataFrame]) -> Any:
    stats = model["accord"]["term_frequencies"][column]
    total = max(int(stats["total"]), 1)
    counts = stats["counts"]
    values = pd.unique(pd.concat([f[column] for f in frames]).dropna())
    tf = [counts.get(v, 1) / total for v in values]
    return pd.DataFrame({column: pd.Series(values, dtype="object"), f"tf_{column}": tf})


def _register_term_frequencies(
    backend: _Backend, linker: Linker, model: Mapping[str, Any], frames: Sequence[pd.DataFrame]
) -> None:
    for column in model["accord"]["term_frequencies"]:
        lookup = _tf_lookup(model, column, frames)
        schema = pa.schema([pa.field(column, pa.string()), pa.field(f"tf_{column}", pa.float64())])
        backend._counter += 1
        name = f"accord_tf_{column}_{backend.api.id}_{backend._counter}"
        backend._names.append(name)
        table = pa.Table.from_pandas(lookup, schema=schema, preserve_index=False)
        sdf = backend.api.register(table, table_name=name)
        linker.table_management.register_term_frequency_lookup(sdf, column)


# --------------------------------------------------------------------------- the model


def splink_model(model: Mapping[str, Any]) -> dict[str, Any]:
    """The pure Splink settings of an Accord model (what ``Linker(df, settings)`` accepts)."""
    return {k: copy.deepcopy(v) for k, v in model.items() if k != "accord"}


def _settings_for(model: Mapping[str, Any], dialect: str) -> dict[str, Any]:
    """The model's Splink settings in ``dialect``: rebuilt from the design if trained elsewhere."""
    pure = splink_model(model)
    if pure.get("sql_dialect") == dialect:
        return pure
    meta = model["accord"]
    rebuilt = settings(pure["link_type"], meta["columns"]).create_settings_dict(dialect)
    trained = pure["comparisons"]
    if [c["output_column_name"] for c in rebuilt["comparisons"]] != [
        c["output_column_name"] for c in trained
    ]:
        raise ValueError("model comparisons do not match this version of the Accord design")
    for new, old in zip(rebuilt["comparisons"], trained, strict=True):
        if len(new["comparison_levels"]) != len(old["comparison_levels"]):
            raise ValueError(f"levels of {old['output_column_name']} changed since training")
        for new_level, old_level in zip(
            new["comparison_levels"], old["comparison_levels"], strict=True
        ):
            for key in ("m_probability", "u_probability", "tf_minimum_u_value"):
                if key in old_level:
                    new_level[key] = old_level[key]
    for key in ("probability_two_random_records_match", "em_convergence", "max_iterations"):
        if key in pure:
            rebuilt[key] = pure[key]
    rebuilt["sql_dialect"] = dialect
    return rebuilt


UNOBSERVED = 1e-6
"""m or u of a level never seen in training: the value Splink itself scores such a level with."""


def _fill_unobserved(model: dict[str, Any]) -> None:
    """Write out the m and u Splink used in memory for levels never seen in training.

    Splink leaves them out of the JSON, and a reloaded model would then fall back to default
    values: a stored Accord model scores exactly like the linker that trained it.
    """
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            level.setdefault("m_probability", UNOBSERVED)
            level.setdefault("u_probability", UNOBSERVED)


def _restart_m(linker: Linker) -> None:
    """Start an EM pass from Splink's default m values, not from the previous pass's.

    On clean data one pass drives the m of "disagrees" levels towards 0 (1e-22 is common);
    starting the next pass there makes every non-match's probability underflow, and Splink 5
    then fails on an m of exactly 0. Splink still combines the passes' own estimates (median).
    """
    for comparison in linker._settings_obj.comparisons:
        for level in comparison._comparison_levels_excluding_null:
            if not level._fix_m_probability:
                level.m_probability = None


def _linker(frames: Any, settings_dict: Mapping[str, Any] | SettingsCreator) -> Linker:
    return Linker(frames, copy.deepcopy(settings_dict), log_level=None)


def train(
    records: Any,
    *,
    engine: str | None = None,
    seed: int = 42,
    link_type: str = "dedupe_only",
    max_pairs_u: float = MAX_PAIRS_U,
    max_pairs_em: float = MAX_PAIRS_EM,
    recall: float = DETERMINISTIC_RECALL,
) -> dict[str, Any]:
    """Estimate the model without labels; returns the model JSON (a plain dict) to store.

    u from random pairs (what agreement looks like by chance), the prior from deterministic
    rules with an assumed ``recall``, m by expectation maximisation over several blocking
    passes so that every comparison is estimated in a pass that does not block on it.
    """
    frame = prepare(records)
    columns = informative_columns(frame)
    if len(frame) < 2 or not columns:
        raise ValueError("need at least two records with a filled, varying canonical column")
    creator = settings(link_type, columns)
    with _Backend(engine) as backend:
        inputs = _split_by_source(backend, frame, link_type)
        linker = _linker(inputs, creator)
        det_rules = _deterministic_rules(columns)
        if det_rules:
            linker.training.estimate_probability_two_random_records_match(det_rules, recall)
        if not linker._settings_obj._probability_two_random_records_match > 0:
            # no pair agrees on any deterministic rule (sources sharing no e-mail or phone):
            # a prior of 0 would make every weight log(0). EM starts from one match per two
            # records instead and estimates the prior from there.
            linker._settings_obj._probability_two_random_records_match = 1 / max(len(frame), 2)
        # Chunks and sampling probes only pay when there are more pairs than the budget, and
        # not on Spark, where each chunk is a job with seconds of fixed cost.
        n_pairs = len(frame) * (len(frame) - 1) / 2
        chunks = 1 if n_pairs <= max_pairs_u or backend.engine == "spark" else 10
        linker.training.estimate_u_using_random_sampling(
            max_pairs=max_pairs_u, seed=seed, num_chunks=chunks
        )
        passes: list[dict[str, Any]] = []
        untrained = set(columns)
        for blocked, rule in _em_rules(columns):
            # A pass estimates the comparisons that do not read its blocking columns. Passes
            # run until each comparison has been estimated once, and at least two ran.
            frees = {c for c in untrained if not _compared_columns(c) & blocked}
            if untrained and not frees:
                continue
            sql = rule.get_blocking_rule(backend.dialect).blocking_rule_sql
            before = copy.deepcopy(linker._settings_obj)
            _restart_m(linker)
            try:
                # EM on agreement-pattern counts: the iterations run over a few hundred rows
                # instead of every blocked pair (a Spark job per iteration costs seconds).
                linker.training.estimate_parameters_using_expectation_maximisation(
                    rule,
                    estimate_without_term_frequencies=True,
                    max_pairs=max_pairs_em if n_pairs > max_pairs_em else None,
                )
            except (ValueError, SplinkException) as exc:
                # Splink 5 rejects an m that EM drove to exactly 0 (a level seen only among
                # non-matches of a small pass) instead of clamping it, after having changed
                # the linker's prior: the pass is undone and the next one takes its place.
                linker._settings_obj = before
                logger.warning("EM pass blocked on %s skipped: %s", sql, exc)
                passes.append({"blocking_rule": sql, "used": False})
                continue
            passes.append({"blocking_rule": sql, "used": True})
            untrained -= frees
            if not untrained and sum(p["used"] for p in passes) >= 2:
                break
        if untrained:
            logger.warning("no EM pass could estimate m for %s", sorted(untrained))
        model = linker.misc.save_model_to_json()
    _fill_unobserved(model)
    model["accord"] = {
        "format": MODEL_FORMAT,
        "splink_version": splink.__version__,
        "trained_on_engine": backend.engine,
        "trained_records": int(len(frame)),
        "seed": seed,
        "columns": columns,
        "em_passes": passes,
        "term_frequencies": _term_frequencies(frame, columns),
    }
    return model


def _split_by_source(backend: _Backend, frame: pd.DataFrame, link_type: str) -> Any:
    if link_type == "dedupe_only":
        return backend.register(frame, "records")
    sources = frame[SOURCE].dropna().unique().tolist()
    if len(sources) < 2 or frame[SOURCE].isna().any():
        raise ValueError(f"{link_type} needs a {SOURCE!r} on every record and two sources")
    return [
        backend.register(frame[frame[SOURCE] == s], f"source{i}") for i, s in enumerate(sources)
    ]


# --------------------------------------------------------------------------- scoring


def _finish_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """Pairs with the smaller id on the left, strongest first (comparisons are symmetric)."""
    if pairs.empty:
        return pairs.reset_index(drop=True)
    pairs = pairs[pairs[f"{ID}_l"] != pairs[f"{ID}_r"]].copy()
    flip = pairs[f"{ID}_l"] > pairs[f"{ID}_r"]
    if flip.any():
        for left in [c for c in pairs.columns if c.endswith("_l")]:
            right = left[:-2] + "_r"
            if right in pairs.columns:
                a, b = pairs.loc[flip, left].copy(), pairs.loc[flip, right].copy()
                pairs.loc[flip, left], pairs.loc[flip, right] = b.to_numpy(), a.to_numpy()
    pairs = pairs.drop_duplicates([f"{ID}_l", f"{ID}_r"])
    pairs = pairs.sort_values(["match_weight", f"{ID}_l", f"{ID}_r"], ascending=[False, True, True])
    return pairs.reset_index(drop=True)


def _empty_pairs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "match_weight": pd.Series(dtype="float64"),
            "match_probability": pd.Series(dtype="float64"),
            f"{ID}_l": pd.Series(dtype="int64"),
            f"{ID}_r": pd.Series(dtype="int64"),
        }
    )


def _is_score_column(name: str) -> bool:
    return name in (f"{ID}_l", f"{ID}_r", "match_probability", "match_weight") or \
        name.startswith(("gamma_", "mw_"))


def predict(
    model: Mapping[str, Any], records: Any, *, threshold: float, engine: str | None = None,
    scores_only: bool = False,
) -> pd.DataFrame:
    """Every blocked pair with match probability >= ``threshold``, scored by the model.

    Columns: unique_id_l/_r, match_probability, match_weight, and per comparison the gamma_
    (level), mw_ (level weight) and mw_tf_adj_ (term-frequency adjustment) columns, and unless
    `scores_only`, the compared values (_l/_r) and source_l/_r.
    """
    frame = prepare(records)
    if len(frame) < 2:
        return _empty_pairs()
    with _Backend(engine) as backend:
        settings_dict = _settings_for(model, backend.dialect)
        inputs = _split_by_source(backend, frame, settings_dict["link_type"])
        linker = _linker(inputs, settings_dict)
        _register_term_frequencies(backend, linker, model, [frame])
        result = linker.inference.predict(
            threshold_match_probability=threshold, warning_mode="never"
        )
        pairs = backend.to_pandas(result, scores_only)
    return _finish_pairs(pairs)


def match_new(
    model: Mapping[str, Any],
    new_records: Any,
    candidates: Any,
    *,
    threshold: float,
    engine: str | None = None,
) -> pd.DataFrame:
    """Score new records against candidate records and against each other (incremental path).

    Candidates are existing resolved records the caller pre-selected by indexed keys; pairs
    among candidates are not scored again. Same columns as ``predict``.
    """
    new = prepare(new_records)
    old = prepare(candidates)
    old = old[~old[ID].isin(new[ID])]
    if new.empty:
        return _empty_pairs()
    # Hot-value caps must see both sides, as they would in one batch.
    both = pd.concat([new, old], ignore_index=True)
    for column, key in _CAPPED_KEYS.items():
        both[key] = _capped(both[column])
    new, old = both.iloc[: len(new)].copy(), both.iloc[len(new) :].copy()
    with _Backend(engine) as backend:
        settings_dict = _settings_for(model, backend.dialect)
        link_type = settings_dict["link_type"]
        new_sdf = backend.register(new, "new")
        linker = _linker(new_sdf, {**settings_dict, "link_type": "dedupe_only"})
        _register_term_frequencies(backend, linker, model, [new, old])
        parts = []
        if len(new) > 1 and link_type != "link_only":
            within = linker.inference.predict_within(
                new_sdf, threshold_match_probability=threshold, warning_mode="never"
            )
            parts.append(backend.to_pandas(within))
        if not old.empty:
            old_sdf = backend.register(old, "candidates")
            between = linker.inference.predict_between(
                new_sdf,
                old_sdf,
                link_type="dedupe_only",
                threshold_match_probability=threshold,
                warning_mode="never",
            )
            parts.append(backend.to_pandas(between))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return _empty_pairs()
    pairs = pd.concat(parts, ignore_index=True)
    if link_type == "link_only":
        pairs = pairs[pairs[f"{SOURCE}_l"] != pairs[f"{SOURCE}_r"]]
    return _finish_pairs(pairs)


def _plain(value: Any) -> Any:
    return None if value is None or value is pd.NA else value


def prior_match_weight(model: Mapping[str, Any]) -> float:
    """log2 of the prior odds that two random records match: the start of every pair's weight."""
    p = float(model["probability_two_random_records_match"])
    return math.log2(p / (1.0 - p))


def _level_labels(comparison: Mapping[str, Any]) -> dict[int, str]:
    levels = comparison["comparison_levels"]
    non_null = [lv for lv in levels if not lv.get("is_null_level")]
    labels = {-1: "Missing on one side"}
    for i, level in enumerate(non_null):
        labels[len(non_null) - 1 - i] = level.get("label_for_charts") or level["sql_condition"]
    return labels


def explain(
    model: Mapping[str, Any], left: Mapping[str, Any], right: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Per compared field: both values, the agreement level and its match weight (log2 Bayes
    factor, term-frequency adjustment included).

    The weights plus ``prior_match_weight(model)`` add up to the pair's ``match_weight``. Scored
    in-process on DuckDB with the model's own SQL, so it is exact whichever engine ran the batch.
    """
    left_rec = {ID: -1, **left} if ID not in left else dict(left)
    right_rec = {ID: -2, **right} if ID not in right else dict(right)
    if left_rec[ID] == right_rec[ID]:
        right_rec[ID] = int(left_rec[ID]) + 1
    a, b = prepare([left_rec]), prepare([right_rec])
    with _Backend("duckdb") as backend:
        settings_dict = _settings_for(model, backend.dialect)
        sdf_a = backend.register(a, "left")
        sdf_b = backend.register(b, "right")
        linker = _linker(sdf_a, {**settings_dict, "link_type": "dedupe_only"})
        _register_term_frequencies(backend, linker, model, [a, b])
        row = backend.to_pandas(linker.inference.score_pairs(sdf_a, sdf_b)).iloc[0]
    out = []
    for comparison in settings_dict["comparisons"]:
        name = comparison["output_column_name"]
        gamma = int(row[f"gamma_{name}"])
        weight = float(row[f"mw_{name}"])
        tf_col = f"mw_tf_adj_{name}"
        tf_adj = float(row[tf_col]) if tf_col in row.index and pd.notna(row[tf_col]) else 0.0
        out.append(
            {
                "field": name,
                "left": _plain(a.at[0, name]),
                "right": _plain(b.at[0, name]),
                "level": _level_labels(comparison).get(gamma, str(gamma)),
                "gamma": gamma,
                "match_weight": weight + tf_adj,
                "tf_adjustment": tf_adj,
            }
        )
    return out


# --------------------------------------------------------------------------- decisions


def triage(pairs: pd.DataFrame, thresholds: Thresholds) -> pd.DataFrame:
    """Adds ``decision``: ``link`` at or above upper, ``review`` from lower, else ``no_match``."""
    out = pairs.copy()
    p = out["match_probability"].to_numpy(dtype="float64")
    out["decision"] = np.where(
        p >= thresholds.upper, "link", np.where(p >= thresholds.lower, "review", "no_match")
    )
    return out


def cluster(pairs: Any, ids: Iterable[int], *, threshold: float) -> dict[int, int]:
    """Connected components over pairs with match probability >= ``threshold``.

    Every id of ``ids`` (and of the kept pairs) maps to the smallest id of its component;
    an id without a link maps to itself.
    """
    frame = _as_frame(pairs) if not isinstance(pairs, pd.DataFrame) else pairs
    if isinstance(ids, pd.Series | pd.Index | np.ndarray | list | tuple | range):
        all_ids = np.asarray(ids, dtype=np.int64)
    else:
        all_ids = np.fromiter((int(i) for i in ids), dtype=np.int64)
    if len(frame):
        kept = frame[frame["match_probability"].to_numpy(dtype="float64") >= threshold]
        left = kept[f"{ID}_l"].to_numpy(dtype=np.int64)
        right = kept[f"{ID}_r"].to_numpy(dtype=np.int64)
    else:
        left = right = np.empty(0, dtype=np.int64)
    nodes = np.sort(np.concatenate([all_ids, left, right]))  # index order = id order
    if len(nodes) == 0:
        return {}
    nodes = nodes[np.r_[True, nodes[1:] != nodes[:-1]]]
    label = np.arange(len(nodes))
    if len(left):
        # Min-label propagation with pointer jumping: every round each linked node takes the
        # smallest label among its edges, then the label of its label; a few rounds suffice.
        a, b = np.searchsorted(nodes, left), np.searchsorted(nodes, right)
        ends = np.concatenate([a, b])
        order = np.argsort(ends, kind="stable")
        starts = np.flatnonzero(np.r_[True, ends[order][1:] != ends[order][:-1]])
        touched = ends[order][starts]
        while True:
            before = label.copy()
            low = np.minimum(label[a], label[b])
            smallest = np.minimum.reduceat(np.concatenate([low, low])[order], starts)
            label[touched] = np.minimum(label[touched], smallest)
            label = label[label]
            if np.array_equal(label, before):
                break
    return dict(zip(nodes.tolist(), nodes[label].tolist(), strict=True))
