"""Mutation check of the engine tests: apply each deliberate bug to a copy of the tree,
run the engine tests with ``pytest -x``, and print the first test that fails.

    .venv/bin/python tests/mutation_check.py            # every mutation (~15 min on 2 cores)
    .venv/bin/python tests/mutation_check.py a g h1     # some of them
    .venv/bin/python tests/mutation_check.py S          # the statistics mutations S1... (~3 min)
    .venv/bin/python tests/mutation_check.py R j        # the reliability mutations R1... (~10 min)
    .venv/bin/python tests/mutation_check.py I          # the instability mutations I1-I7 (~2 min)

Exits non-zero if any chosen mutation survives.

A mutation that prints ``failing: NONE`` is a bug the suite would not catch. Not collected
by pytest (the file name does not start with ``test_``); needs the data mirror
(``LOTTERY_DATA_MIRROR``, default ``../shared/data``).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1])
MUT = os.path.join(tempfile.mkdtemp(prefix="lottery-mutation-"), "tree")
TESTS = ["tests/test_masks.py", "tests/test_store.py", "tests/test_train.py", "tests/test_tickets.py"]

GLOBAL_PRUNE = '''def magnitude_prune(mask: Mask, weights: dict[str, torch.Tensor], prune_fraction: float) -> Mask:
    k = keep_count(sum(int(a.sum()) for a in mask.values()), prune_fraction)
    scores = torch.cat([torch.where(mask[n].flatten(), weights[n].detach().abs().cpu().flatten().double(),
                        torch.tensor(-1.0, dtype=torch.float64)) for n in mask])
    thr = torch.sort(scores, descending=True).values[k - 1]
    return {n: mask[n] & (weights[n].detach().abs().cpu().double() >= thr) for n in mask}


def _unused_magnitude_prune('''
GLOBAL_RANDOM = '''def random_prune(mask: Mask, prune_fraction: float, generator: torch.Generator) -> Mask:
    k = keep_count(sum(int(a.sum()) for a in mask.values()), prune_fraction)
    scores = {n: torch.rand(a.shape, generator=generator) for n, a in mask.items()}
    flat = torch.cat([torch.where(mask[n].flatten(), scores[n].flatten().double(), torch.tensor(-1.0, dtype=torch.float64)) for n in mask])
    thr = torch.sort(flat, descending=True).values[k - 1]
    return {n: mask[n] & (scores[n].double() >= thr) for n in mask}


def _unused_random_prune('''

INF, CL, VER, TR = ("lottery/stats/inference.py", "lottery/stats/claims.py", "lottery/stats/verdicts.py",
                   "lottery/stats/transition.py")
STATS_TESTS = ["tests/test_verdicts.py", "tests/test_claims.py"]

#: The statistics mutations (issue 22): each changes a verdict's test on a targeted input.
S_MUTATIONS = {
 "S1 claim 6 sign flipped": [("lottery/stats/transfer_claims.py",
                              'tests = [SeedTest("CDs → *", c, w, x, "above", len(found))',
                              'tests = [SeedTest("CDs → *", c, w, x, "below", len(found))')],
 "S2 collapse share 95% -> 90%": [("lottery/stats/analysis.py", "COLLAPSE_SHARE = 0.95", "COLLAPSE_SHARE = 0.90")],
 "S3 collapse = exactly 0.5": [("lottery/stats/analysis.py", "    return one_class.where(share.notna(), by_accuracy).astype(bool)",
                                '    return df["test_acc"] == CHANCE')],
 "S4 sign-flip test two-sided": [(INF, '        sign_flip_p(excess, "greater"), sign_flip_p(excess, "less"),',
                                  '        sign_flip_p(excess, "two-sided"), sign_flip_p(excess, "two-sided"),')],
 "S5 spread from the mean (Levene)": [(INF, '.transform("median")', '.transform("mean")')],
 "S6 stability over all rounds": [(TR, "stab = inf.stability_test(df, a, b, group, EXTREME)",
                                   "stab = inf.stability_test(df, a, b, group, inf.PRUNED)")],
 "S7 claim 2 over 0-96%": [(CL, 'per = inf.seed_contrast(inf.with_full_model(tickets), "reset", "full", within=MODERATE)',
                            'per = inf.seed_contrast(inf.with_full_model(tickets), "reset", "full", within=inf.BELOW_TRANSITION)')],
 "S8 claim 4 with (domain x seed) as n": [(CL, 'v.per_seed(pooled.sort_index()),', 'v.per_seed(per["diff"]),')],
 "S9 Spearman -> Pearson": [(INF, "rx, ry = stats.rankdata(x), stats.rankdata(y)", "rx, ry = x, y")],
 "S10 permutation p one-sided": [(INF, 'alternative="two-sided", random_state=seed, vectorized=True)',
                                  'alternative="less", random_state=seed, vectorized=True)')],
 "S11 claims 5/8 family 3 -> 1": [(TR, "    family = 3  # the gap test", "    family = 1  # the gap test")],
 "S12 stability ignores the spread": [(INF, "(self.p_more_collapses_b, self.p_more_spread_b) if which",
                                       "(self.p_more_collapses_b,) if which")],
 "S13 claim 3 tests only the first domain": [(CL, 'for d in dict.fromkeys(per["domain"])]',
                                              'for d in list(dict.fromkeys(per["domain"]))[:1]]')],
 "S14 'in every domain' by Bonferroni, not intersection-union": [
     (VER, "if all(s in (SUPPORT, SUPPORT_IUT) for s in states):", "if all(s == SUPPORT for s in states):")],
 "S15 a contrary interval gives 'partly'": [(VER, "    if any(s == AGAINST for s in states):\n        return NOT\n", "")],
 "S16 TOST at 95%": [(VER, 'return 1 - 2 * inf.ALPHA if self.kind in ("equivalent", "band") else 1 - inf.ALPHA',
                      'return 1 - inf.ALPHA')],
 "S17 collapses counted per (domain, seed), not per seed": [
     (INF, 'counts = d.pivot_table(index="seed", columns="strategy"',
      'counts = d.pivot_table(index=[group, "seed"], columns="strategy"')],
 "S18 robustness ignores leave-one-seed-out": [
     ("lottery/stats/robustness.py", "c.robust = same_loso == len(loso[c.number]) and share >= AGREEMENT",
      "c.robust = share >= AGREEMENT")],
 "S19 Spearman p from random pairings at n = 9": [(INF, "exact = len(x) <= EXACT_UP_TO", "exact = False")],
}

#: The reliability mutations (issue 23): each breaks one fault-handling guarantee.
ST, CLU, FP = "lottery/engine/store.py", "lottery/engine/cluster.py", "lottery/data/fingerprint.py"
R_TESTS = ["tests/test_store_reliability.py", "tests/test_data_reliability.py"]
R_MUTATIONS = {
 "R1 a finished step is replaced by a later writer": [(ST, "        if self.done(step):\n            return False", "        if False:\n            return False")],
 "R2 no lock per step": [(ST, "stack.enter_context(FileLock(", "stack.enter_context(contextlib.nullcontext(")],
 "R3 only the damaged step is set aside": [("lottery/engine/recovery.py", '    return [s for s in run.steps() if s.split("/")[0] == strategy]', "    return [step]")],
 "R4 a damaged step is not repaired": [("lottery/engine/recovery.py", "        except CorruptStep as bad:\n            if not repair(bad):", "        except ZeroDivisionError as bad:\n            if not repair(bad):")],
 "R5 the run folder is created up front": [(ST, "        self.on_step_written = on_step_written\n\n    def _create", "        self.on_step_written = on_step_written\n        self._create()\n\n    def _create")],
 "R6 digests cached by size and mtime only": [(FP, '    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino,\n            "ctime_ns": st.st_ctime_ns}', '    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}')],
 "R7 duplicate spec keys accepted": [("lottery/data/registry.py", "    repeated = _repeated_key(raw)", "    repeated = None")],
 "R8 a full disk is a bare error": [("lottery/engine/durable.py", "        if is_full(exc):\n            raise full_error(path, exc) from None", "        if False:\n            raise full_error(path, exc) from None")],
 "R9 workers are not asked for the store token": [(CLU, "    problem = store_problem(store_root, token)", "    problem = None")],
 "R10 trainings of a threaded worker run at once": [(CLU, "    with _ONE_TRAINING:", "    with contextlib.nullcontext():"),
                                                    (CLU, "import hashlib\n", "import contextlib\nimport hashlib\n")],
 "R11 a step published without the publish lock": [("lottery/engine/store.py", """        with FileLock(self.path / ".locks" / f"{step.replace('/', '.')}.publish.lock"):""", """        with contextlib.nullcontext():""")],
}

#: The instability mutations (issue 25): each breaks one guarantee of the path.
INS = "lottery/engine/instability.py"
I_MUTATIONS = {
 "I1 interpolation does not apply the mask": [(INS, "        if name in mask:   # the survivors only", "        if False:   # the survivors only")],
 "I2 both copies share one seed": [(INS, 'seed=derive_seed(self.seed, "instability", r, copy))', 'seed=derive_seed(self.seed, "instability", r))')],
 "I3 transfer instability takes the target's own masks": [(INS, "return TicketChain(self.settings, self.source or self.domain, self.seed, (self.mask_strategy,))",
                                                           "return TicketChain(self.settings, self.domain, self.seed, (self.mask_strategy,))")],
 "I4 the rewind copies start from θ0": [(INS, "starts = starts_for(s, origin, tickets, theta0, self.seed, [self.strategy])",
                                          'starts = {"theta0": theta0, "rewind": theta0}')],
 "I5 a pair with both copies collapsed counted as split": [("lottery/stats/instability.py", "both=n == 2, split=n == 1,", "both=n == 2, split=n >= 1,")],
 "I6 the plan counts an instability step once": [("lottery/book/plan.py", 'return getattr(job, "trainings_per_step", 1)', "return 1")],
 "I7 transfer instability trains on the source's data": [(INS, "data = domain_data(s.data, s.vocab, self.domain)    # a transfer's target",
                                                          "data = domain_data(s.data, s.vocab, self.source or self.domain)")],
}

#: The speed mutations (issue 27): each breaks the sparse backward, the batch gather or the allocator setting.
MOD = "lottery/engine/model.py"
P_TESTS = ["tests/test_model.py", "tests/test_train.py", "tests/test_allocator.py"]
P_MUTATIONS = {
 "P1 tap j reads the mirrored window position": [(MOD, "offsets = torch.arange(height, device=g.device).view(1, height, 1)", "offsets = torch.arange(height, device=g.device).flip(0).view(1, height, 1)")],
 "P2 input gradient not propagated": [(MOD, "grad_x = sparse_product(select.t().to_sparse_csr(), taps)", "grad_x = 0 * sparse_product(select.t().to_sparse_csr(), taps)")],
 "P3 bias gradient averaged": [(MOD, "g_h.sum(dim=0)]", "g_h.mean(dim=0)]")],
 "P4 a batch gathers its rows in sorted order": [("lottery/engine/train.py", "rows = padded_ids(split, pad_id)[index, :width]", "rows = padded_ids(split, pad_id)[index.sort().values, :width]")],
 "P5 the sparse path ignores torch.nn.utils.prune hooks": [(MOD, "torch.is_grad_enabled() and not hooked:", "torch.is_grad_enabled():")],
 "P6 weight gradient rows read in (h, C) order": [(MOD, "grad.view(channels, height, d).permute(0, 2, 1)", "grad.view(height, channels, d).permute(1, 2, 0)")],
 "P7 training gives freed memory back to the kernel": [("lottery/engine/train.py", "    keep_freed_memory()        #", "    pass        #")],
 "P8 bf16 autocast casts the input per kernel height": [(MOD, "    if torch.is_autocast_enabled(kind):\n        x = x.to(", "    if False:\n        x = x.to(")],
 "P9 stacked models share one mean loss": [("lottery/engine/train.py", "loss = sum(losses[1:], losses[0])     #", "loss = sum(losses[1:], losses[0]) / len(losses)     #")],
 "P10 stacking benchmark: the bound ignores the fixed cost": [("benchmarks/stacking.py", "saving = (K - 1) / K * fixed + ", "saving = ")],
}

MUTATIONS = {
 "a MASKS-RANDOM starts from θ0": [("lottery/config/strategies.py", 'Strategy("masks_random",   "MASKS-RANDOM",   "transfer",  "fresh", ', 'Strategy("masks_random",   "MASKS-RANDOM",   "transfer",  "theta0",')],
 "b TICKET-RANDOM reuses one draw": [("lottery/engine/starts.py", "manual_seed(derive_seed(seed, key, r))", "manual_seed(derive_seed(seed, key))")],
 "c mask not re-applied after a step": [("lottery/engine/train.py", "            p.mul_(m)", "            pass")],
 "d keep count rounded down": [("lottery/engine/masks.py", "math.ceil((1.0 - prune_fraction) * alive - 1e-9)", "math.floor((1.0 - prune_fraction) * alive + 1e-9)")],
 "e global pruning": [("lottery/engine/masks.py", "def magnitude_prune(", GLOBAL_PRUNE)],
 "f control with other per-layer counts": [("lottery/engine/masks.py", "def random_prune(", GLOBAL_RANDOM)],
 "g MASKS-RESET uses target masks": [("lottery/engine/jobs.py", "mask = src.tensors(step_name(strat.SOURCE_STRATEGY, r), \"mask\")",
                                      "mask = TicketChain(s, self.target, seed, ('reset',)).run_dir(store).tensors(step_name(strat.SOURCE_STRATEGY, r), \"mask\")")],
 "h1 lr not hashed": [("lottery/config/hparams.py", "    lr: float = " + 'field(default=1e-3, metadata={', "    lr: float = " + 'field(default=1e-3, metadata={"hashed": False, ')],
 "h2 p not hashed": [("lottery/config/hparams.py", "    prune_fraction_per_round: float = " + 'field(default=0.35, metadata={', "    prune_fraction_per_round: float = " + 'field(default=0.35, metadata={"hashed": False, ')],
 "h3 split_seed not hashed": [("lottery/config/hparams.py", "    split_seed: int = " + 'field(default=0, metadata={', "    split_seed: int = " + 'field(default=0, metadata={"hashed": False, ')],
 "h4 n_train not hashed": [("lottery/config/hparams.py", "    n_train: int = " + 'field(default=20_000, metadata={', "    n_train: int = " + 'field(default=20_000, metadata={"hashed": False, ')],
 "h5 vocab_size not hashed": [("lottery/config/hparams.py", "    vocab_size: int = " + 'field(default=8000, metadata={', "    vocab_size: int = " + 'field(default=8000, metadata={"hashed": False, ')],
 "h6 max_len not hashed": [("lottery/config/hparams.py", "    max_len: int = " + 'field(default=500, metadata={', "    max_len: int = " + 'field(default=500, metadata={"hashed": False, ')],
 "h7 dataset not hashed": [("lottery/config/hparams.py", '    dataset: str = field(default="fdu-mtl", metadata={', '    dataset: str = field(default="fdu-mtl", metadata={"hashed": False, ')],
 "h8 domains not hashed": [("lottery/config/hparams.py", "    domains: tuple[str, ...] = " + 'field(default=DEFAULT_DOMAINS, metadata={', "    domains: tuple[str, ...] = " + 'field(default=DEFAULT_DOMAINS, metadata={"hashed": False, ')],
 "h9 he_a not hashed": [("lottery/config/hparams.py", "    he_a: float = " + 'field(default=0.0, metadata={', "    he_a: float = " + 'field(default=0.0, metadata={"hashed": False, ')],
 "i padding row trainable": [("lottery/engine/model.py", "nn.Embedding(vocab_size, settings.embed_dim, padding_idx=pad_id)", "nn.Embedding(vocab_size, settings.embed_dim)"),
                             ("lottery/engine/masks.py", "        mask[\"embedding.weight\"][pad_id] = False", "        pass")],
 "j data content not in the run key": [("lottery/data/fingerprint.py", '    return {"data": dataclasses.replace(data, dataset=USER_SPEC), "data_spec": described,\n            "data_files": data_fingerprint(data)}', '    return {"data": dataclasses.replace(data, dataset=USER_SPEC)}')],
 "k transfer rounds renumbered": [("lottery/engine/jobs.py", "        for r in self.rounds:\n",
                                   "        for r in range(1, len(self.rounds) + 1):\n")],
 "l TICKET-REWIND resets to θ0": [("lottery/engine/starts.py", '    model.load_state_dict(starts["rewind"])', '    model.load_state_dict(starts["theta0"])')],
 "m rewind point one step late": [("lottery/engine/jobs.py", "            if steps[0] == k:", "            if steps[0] == k + 1:")],
 "n rewind_iterations not hashed": [("lottery/config/hparams.py", "field(default=REWIND_DEFAULT, metadata={", "field(default=REWIND_DEFAULT, metadata={\"hashed\": False, ")],
 "p federated: mask not applied in local training": [("lottery/federated/protocol.py", "                masked_step(net, optimizer, masks,", "                masked_step(net, optimizer, [],")],
 "q federated: TICKET-TARGET gets the server's mask": [("lottery/federated/jobs.py", "domain = t.server if origin == \"server\" else t.clients_domain", "domain = t.server")],
 "r federated: mask sent every round": [("lottery/federated/protocol.py", "first = comm_round == 1 and self.send_mask", "first = self.send_mask")],
 "s federated: comm_rounds not in the run key": [("lottery/federated/jobs.py", "\"federated\": {\"clients\": f.clients, \"comm_rounds\": f.comm_rounds,", "\"federated\": {\"clients\": f.clients,")],
 "t federated: unweighted average": [("lottery/federated/protocol.py", "a.astype(np.float64) * (size / total)", "a.astype(np.float64) / len(updates)")],
 "u federated: clients share one batch order": [("lottery/federated/protocol.py", "\"federated\", comm_round, client)", "\"federated\", comm_round)")],
 "o MASKS-REWIND from the target's θ_k": [("lottery/engine/jobs.py", "starts = _starts(s, domain_data(s.data, s.vocab, self.source), src, theta0, seed,",
                                           "starts = _starts(s, data, TicketChain(s, self.target, seed, ()).run_dir(store), theta0, seed,")],
}

only = sys.argv[1:]
survivors = []
for name, edits in {**MUTATIONS, **S_MUTATIONS, **R_MUTATIONS, **I_MUTATIONS, **P_MUTATIONS}.items():
    mid = name.split()[0]   # "S12": chosen by "S12" or by "S"
    chosen = any(o in (mid, mid.rstrip("0123456789")) for o in only)
    if only and not chosen:
        continue
    shutil.rmtree(MUT, ignore_errors=True)
    shutil.copytree(SRC, MUT, ignore=lambda d, names: [n for n in names if n in (".venv", ".cache", ".git", "__pycache__")
                                                   or (os.path.samefile(d, SRC) and n in ("book", "notebooks"))])
    for path, old, new in edits:
        f = os.path.join(MUT, path)
        text = open(f).read()
        assert text.count(old) >= 1, (name, path, old)
        open(f, "w").write(text.replace(old, new, 1))
    tests = (STATS_TESTS if name.startswith("S") else
             ["tests/test_bench.py"] if name.startswith(("P9", "P10")) else
             P_TESTS if name.startswith("P") else
             ["tests/test_instability.py"] if name.startswith("I") else
             ["tests/test_cluster.py"] if name.startswith(("R9", "R10")) else
             R_TESTS if name.startswith("R") else
             ["tests/test_store.py"] if name.startswith("h") else
             ["tests/test_data.py", "tests/test_data_reliability.py"] if name.startswith("j") else
             ["tests/test_federated.py"] if "federated" in name else TESTS)
    mirror = os.environ.get("LOTTERY_DATA_MIRROR", str(Path(SRC).parent / "shared" / "data"))
    env = {**os.environ, "PYTHONPATH": MUT, "LOTTERY_DATA_MIRROR": mirror}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                          cwd=MUT, env=env, capture_output=True, text=True)
    failed = re.findall(r"^FAILED (\S+)", proc.stdout, re.M)
    print(f"{name:40s} rc={proc.returncode} failing: {failed or 'NONE'}", flush=True)
    if not failed:
        survivors.append(name)
print(f"{len(survivors)} mutation(s) survived" + (": " + ", ".join(survivors) if survivors else ""))
sys.exit(1 if survivors else 0)
