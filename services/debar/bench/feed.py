"""A realistic restriction feed for `debar bench import`: what the national lists look like, made up.

Checksum-valid identifiers (python-stdnum check characters), a few hundred courts and regulators and a few hundred
legal bases repeated across the records, case numbers like "(2025) Jing 0105 Zhi 12345", masked-looking names,
about one record in ten on an organisation with 1-3 principals, a mix of sources, windows and optional fields, and
some people listed more than once. Deterministic for a seed."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import orjson
from stdnum.cn import ric, uscc

REGIONS = (
    "110101", "110105", "110108", "120101", "130102", "140105", "210102", "220102", "310101", "310104",
    "310115", "320102", "320506", "330102", "330106", "340102", "350102", "360102", "370102", "370202",
    "410102", "420102", "430102", "440103", "440305", "440306", "450102", "500103", "510104", "520102",
    "530102", "610102", "620102", "650102",
)  # fmt: skip
PROVINCES = ("Jing", "Jin", "Ji", "Jin", "Liao", "Ji", "Hu", "Su", "Zhe", "Wan", "Min", "Gan", "Lu", "Yu", "E",
             "Xiang", "Yue", "Gui", "Yu", "Chuan", "Qian", "Yun", "Shaan", "Long", "Xin")  # fmt: skip
CITIES = ("Beijing", "Tianjin", "Shijiazhuang", "Taiyuan", "Shenyang", "Changchun", "Shanghai", "Nanjing",
          "Suzhou", "Hangzhou", "Hefei", "Fuzhou", "Nanchang", "Jinan", "Qingdao", "Zhengzhou", "Wuhan", "Changsha",
          "Guangzhou", "Shenzhen", "Nanning", "Chongqing", "Chengdu", "Guiyang", "Kunming", "Xi'an", "Lanzhou",
          "Urumqi")  # fmt: skip
DISTRICTS = ("Chaoyang", "Haidian", "Dongcheng", "Xicheng", "Pudong", "Huangpu", "Xuhui", "Futian", "Nanshan",
             "Baoan", "Tianhe", "Yuexiu", "Jinjiang", "Wuhou", "Gulou", "Xuanwu", "Shangcheng", "Xihu", "Lixia",
             "Jiangan")  # fmt: skip
SURNAMES = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Zhu",
            "Hu", "Guo", "He", "Lin", "Luo", "Gao")  # fmt: skip
GIVEN = ("Wei", "Fang", "Na", "Xiuying", "Min", "Jing", "Li", "Qiang", "Lei", "Jun", "Yang", "Yong", "Yan", "Jie",
         "Tao", "Ming", "Chao", "Xiaoming", "Hui", "Ping")  # fmt: skip
TRADES = ("Trading", "Construction", "Logistics", "Technology", "Real Estate Development", "Investment",
          "Textiles", "Machinery", "Food", "Pharmaceutical", "Decoration Engineering", "Supply Chain")  # fmt: skip
ROLES = ("LEGAL_REPRESENTATIVE", "PRINCIPAL", "DIRECTLY_RESPONSIBLE", "ACTUAL_CONTROLLER")
# (source, share of records, case number style)
SOURCES = (
    ("court_consumption_order", 0.55, "court"),
    ("dishonest_persons_list", 0.30, "court"),
    ("railway_passenger_credit", 0.10, "railway"),
    ("procurement_debarment", 0.03, "finance"),
    ("procurement_major_violation", 0.02, "finance"),
)
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def authorities(rng: random.Random) -> dict[str, list[str]]:
    courts = sorted({f"{rng.choice(CITIES)} {rng.choice(DISTRICTS)} District People's Court" for _ in range(400)})
    courts += [f"{city} Intermediate People's Court" for city in CITIES]
    railway = ["China State Railway Group Co., Ltd."] + [f"China Railway {city} Group Co., Ltd." for city in CITIES]
    finance = ["Ministry of Finance"] + [f"{city} Municipal Finance Bureau" for city in CITIES]
    return {"court": courts, "railway": railway, "finance": finance}


def legal_bases() -> dict[str, list[str]]:
    court = [f"SPC Provisions on Restricting High Consumption by Judgment Debtors, Art. {a}, para. {p}"
             for a in range(1, 13) for p in range(1, 6)]  # fmt: skip
    court += [f"SPC Provisions on Publishing the List of Dishonest Judgment Debtors, Art. 1({i}); Civil Procedure "
              f"Law, Art. {a}" for i in range(1, 7) for a in (247, 248, 255, 262, 264)]  # fmt: skip
    railway = [f"Railway Passenger Credit Record Measures, Art. {a} ({why})" for a in range(3, 9)
               for why in ("ticket scalping", "forged ticket", "fare evasion", "smoking on a multiple-unit train",
                           "disturbing order", "endangering safety")]  # fmt: skip
    finance = [f"Government Procurement Law, Art. {a}({p})" for a in (22, 71, 72, 77) for p in range(1, 8)]
    return {"court": court, "railway": railway, "finance": finance}


class People:
    """Distinct, checksum-valid RICs and USCCs, numbered so that none repeats by accident."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._persons = 0
        self._organisations = 0

    def person(self) -> str:
        n = self._persons = self._persons + 1
        born = date(1950, 1, 1) + timedelta(days=(n * 7919) % 19000)
        body = f"{REGIONS[(n // 19000) % len(REGIONS)]}{born:%Y%m%d}{(n // (19000 * len(REGIONS))) % 1000:03d}"
        return body + ric.calc_check_digit(body + "0")

    def organisation(self) -> str:
        n = self._organisations = self._organisations + 1
        code = ""
        for _ in range(8):
            n, digit = divmod(n, len(_USCC_ALPHABET))
            code += _USCC_ALPHABET[digit]
        body = f"91{self._rng.choice(REGIONS)}{code}{self._rng.choice(_USCC_ALPHABET)}"
        return body + uscc.calc_check_digit(body + "0")


def _person_name(rng: random.Random) -> str:
    return f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}{rng.choice(('', rng.choice(GIVEN).lower()))}"


def records(count: int, seed: int = 2026) -> Iterator[dict[str, object]]:
    rng = random.Random(seed)
    people = People(rng)
    courts, bases = authorities(rng), legal_bases()
    names, weights = [s[0] for s in SOURCES], [s[1] for s in SOURCES]
    styles = {s[0]: s[2] for s in SOURCES}
    listed: list[str] = []  # some people are listed again, by another court or list
    for i in range(count):
        source = rng.choices(names, weights)[0]
        style = styles[source]
        year = rng.choice((2021, 2022, 2023, 2024, 2025, 2026))
        organisation = style != "railway" and rng.random() < 0.10
        if organisation:
            number, kind = people.organisation(), "USCC"
            name = f"{rng.choice(CITIES)} {rng.choice(SURNAMES)}{rng.choice(GIVEN)} {rng.choice(TRADES)} Co., Ltd."
        else:
            kind = "RIC"
            number = rng.choice(listed) if listed and rng.random() < 0.05 else people.person()
            listed.append(number) if len(listed) < 100_000 else None
            name = _person_name(rng)
        if style == "court":
            case = f"({year}) {rng.choice(PROVINCES)} {rng.randrange(100, 9999):04d} Zhi {rng.randrange(1, 99999)}"
        elif style == "railway":
            case = f"CR-{year}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 99999):05d}"
        else:
            case = f"{rng.choice(PROVINCES)} Cai Cai {year}-{rng.randrange(1, 9999):04d}"
        days_so_far = (min(date(year, 12, 31), date.today()) - date(year, 1, 1)).days + 1  # never decided ahead
        decided = date(year, 1, 1) + timedelta(days=rng.randrange(days_so_far))
        start = decided + timedelta(days=rng.choice((0, 0, 0, 3, 10)))
        record: dict[str, object] = {
            "source": source,
            "source_id": f"{year}-{i:08d}",
            "subject": {"id_type": kind, "id": number},
            "name": name,
            "legal_basis": rng.choice(bases[style]),
            "authority": rng.choice(courts[style]),
            "case_number": case,
            "decided_on": decided.isoformat(),
            "effective_from": start.isoformat(),
            "effective_until": (start + timedelta(days=rng.choice((365, 730, 1095)))).isoformat()
            if rng.random() < 0.3
            else None,
            "measures": None,
        }
        if rng.random() < 0.3:
            record["document_number"] = f"{case} No. {rng.randrange(1, 4)}"
        if organisation:
            record["principals"] = [
                {"subject": {"id_type": "RIC", "id": people.person()}, "role": role, "name": _person_name(rng)}
                for role in rng.sample(ROLES, rng.randrange(1, 4))
            ]
        yield record


def write_feed(path: Path, count: int, seed: int = 2026) -> Path:
    with path.open("wb") as out:
        for record in records(count, seed):
            out.write(orjson.dumps(record) + b"\n")
    return path
