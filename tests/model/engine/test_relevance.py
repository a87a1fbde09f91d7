"""SummaryBank and chunk scoring (pure tensors, real in-memory store)."""

from __future__ import annotations

import torch

from model.engine.relevance import SummaryBank, score_chunks
from model.engine.store import InMemoryChunkStore


def test_summary_bank_grows_reads_missing_rows_from_the_store_and_forgets_old_ones():
    store = InMemoryChunkStore()
    bank = SummaryBank("cam")
    rows = {s: torch.full((2, 1, 4), float(s)) for s in range(40)}
    for s in range(20):
        bank.add(s, rows[s])
    for s in range(20, 40):  # only in the store, as after a restart
        store.put(("cam", s), "coarse", {"summary": rows[s]}, {})
    found, got = bank.gather([3, 25, 39, 0, 77], store)  # 77: nowhere
    assert found == [3, 25, 39, 0]
    assert torch.equal(got, torch.stack([rows[3], rows[25], rows[39], rows[0]]))
    bank.forget_before(30)
    assert sorted(bank.rows) == [39]  # 0..19, 25 forgotten; 30..38 never read
    assert torch.equal(bank.gather([31], store)[1][0], rows[31])
    assert bank.gather([500], store) == ([], None)


def test_score_is_highest_for_the_summary_aligned_with_the_question():
    torch.manual_seed(0)
    q = torch.randn(2, 2, 8)
    summaries = torch.randn(5, 2, 2, 8) * 0.1
    summaries[3] = q
    assert int(score_chunks(q, summaries).argmax()) == 3


def test_summary_bank_at_capacity_forgets_its_oldest_quarter():
    bank = SummaryBank("cam", capacity=8)
    for s in range(9):
        bank.add(s, torch.full((1, 1, 2), float(s)))
    assert sorted(bank.rows) == [2, 3, 4, 5, 6, 7, 8]
    assert bank.data.shape[0] <= 8
    found, got = bank.gather([8, 2], InMemoryChunkStore())
    assert found == [8, 2] and got[:, 0, 0, 0].tolist() == [8.0, 2.0]
