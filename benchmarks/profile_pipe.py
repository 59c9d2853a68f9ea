"""cProfile of nlp.pipe(batch_size=256) on a corpus's queries, intent_ner built from
configs/multitask.cfg on a tiny random BERT (so the host-side work shows).

    python benchmarks/profile_pipe.py corpus/atis/test.spacy
"""
import cProfile, pstats, sys, time
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
import bench
import tempfile
texts = bench.read_texts(sys.argv[1])
tmp = tempfile.mkdtemp()
enc = bench.build_tiny_bert(texts, tmp)
nlp = bench.build_from_config(bench.CONFIGS / "multitask.cfg", None, enc, [sys.argv[1]])
qs = bench.cycle(texts, 2048)
list(nlp.pipe(qs[:256], batch_size=256))
t0=time.perf_counter(); list(nlp.pipe(qs, batch_size=256)); print("q/s", len(qs)/(time.perf_counter()-t0))
pr = cProfile.Profile(); pr.enable(); list(nlp.pipe(qs, batch_size=256)); pr.disable()
pstats.Stats(pr).sort_stats("cumulative").print_stats(45)
