"""kodolly.dpo.cache."""

import threading

from kodolly.dpo.cache import TranslationCache, cache_key, request_signature


def test_cache_keys_and_threads(tmp_path):
    sig = request_signature("m", "sys", {"temperature": 0})
    assert sig != request_signature("m", "sys", {"temperature": 0.5})
    assert cache_key(sig, "가") != cache_key(sig, "나")
    cache = TranslationCache(tmp_path / "c.sqlite")

    def put(i):
        cache.put(cache_key(sig, str(i)), "m", f"t{i}", None, 1, 2)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cache.close()
    again = TranslationCache(tmp_path / "c.sqlite")
    assert len(again) == 20 and again.get(cache_key(sig, "7")).translation == "t7"
    again.add_batch("b1", sig, [("k", "text")])
    assert again.open_batches(sig) == ["b1"] and again.batch_items("b1") == {"k": "text"}
    again.finish_batch("b1", "completed")
    assert again.open_batches(sig) == []


def test_default_cache_is_never_in_the_home_folder_during_tests(tmp_path):
    import os
    from pathlib import Path

    from kodolly.dpo.cache import default_cache_path

    # tests/dpo/conftest.py points KODOLLY_CACHE_DIR at this test's tmp folder (tests/conftest.py at a
    # session folder for every other test), so a build without --cache never touches ~/.cache/kodolly
    assert default_cache_path() == tmp_path / "kodolly-cache" / "dpo.sqlite"
    assert Path(os.path.expanduser("~")) not in default_cache_path().parents


def test_pending_batch_markers(tmp_path):
    sig = request_signature("m", "sys", {})
    cache = TranslationCache(tmp_path / "c.sqlite")
    cache.add_pending("file-a", sig, [("k1", "가"), ("k2", "나")])
    cache.add_pending("file-b", sig, [("k3", "다")])
    assert [f for f, _ in cache.pending_batches(sig)] == ["file-a", "file-b"] and cache.pending_batches("other") == []
    assert cache.open_batches(sig) == []
    cache.attach_batch("file-a", "batch_1")
    assert cache.open_batches(sig) == ["batch_1"] and cache.batch_items("batch_1") == {"k1": "가", "k2": "나"}
    cache.drop_pending("file-b")
    assert cache.pending_batches(sig) == [] and cache.batch_items("file-b") == {} and cache.batch_items("file-a") == {}
