"""Defects in firmware on purpose, to prove the suite can fail (docs/design.md principle 6).

`shipped`: the hand-written defects of the device companion (firmware/mutants/*.patch);
`projects`: a copy of a Particle project with a patch or changed files, cached;
`generate`: mutants made by universalmutator; `equivalence`: the ones not worth running;
`engine`: builds and runs them against the suite; `report`: terminal, selftest.json/html.
"""
