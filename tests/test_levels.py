from registry.levels import LEVELS, distance, is_adjacent, nearest_distance, position


def test_there_are_24_levels_in_spine_order() -> None:
    assert len(LEVELS) == 24
    assert LEVELS[0] == "C1" and LEVELS[7] == "T1" and LEVELS[19] == "L1" and LEVELS[-1] == "L5"


def test_thoracolumbar_junction_is_adjacent() -> None:
    assert is_adjacent("T12", "L1")
    assert is_adjacent("C7", "T1")
    assert not is_adjacent("T11", "L1")


def test_distance_and_nearest_reference() -> None:
    assert distance("T10", "L2") == 4
    assert position("L1") - position("T12") == 1
    assert nearest_distance("L1", ["T12", "L2"]) == 1
    assert nearest_distance("T8", ["T12", "L2"]) == 4
