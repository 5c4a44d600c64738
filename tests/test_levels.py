from registry.levels import LEVELS, POSITION


def test_there_are_24_levels_in_spine_order() -> None:
    assert len(LEVELS) == 24
    assert LEVELS[0] == "C1" and LEVELS[7] == "T1" and LEVELS[19] == "L1" and LEVELS[-1] == "L5"


def test_junctions_are_one_position_apart() -> None:
    # the cohort stage classifies by POSITION differences (cohort.level_position)
    assert POSITION["L1"] - POSITION["T12"] == 1
    assert POSITION["T1"] - POSITION["C7"] == 1
    assert POSITION["L1"] - POSITION["T11"] == 2
    assert POSITION["L2"] - POSITION["T10"] == 4
    assert list(POSITION) == list(LEVELS) and sorted(POSITION.values()) == list(range(24))
