"""The three profiles (smoke, course, paper) and the paper's five domains and nine
transfer tasks."""

from __future__ import annotations

from lottery.config.hparams import (DataSettings, ExperimentSettings, FederatedSettings,
                                    ModelSettings, PruneSettings, TrainSettings, VocabSettings)



#: The paper's nine transfer tasks are not listed in the text; Fig. 4's panels name
#: sources Books, Electronics and CDs. We use each of those three into the other
#: paper domains that the figure shows most clearly: B→E, B→M, B→H, E→B, E→C, E→H,
#: C→B, C→E, C→H (source → target, FDU-MTL names below).
PAPER_TRANSFER_PAIRS: tuple[tuple[str, str], ...] = (
    ("books", "electronics"), ("books", "dvd"), ("books", "kitchen_housewares"),
    ("electronics", "books"), ("electronics", "music"), ("electronics", "kitchen_housewares"),
    ("music", "books"), ("music", "electronics"), ("music", "kitchen_housewares"),
)

PROFILES: dict[str, ExperimentSettings] = {
    # Every setting exactly as §5.1/§5.2 (needs paper-scale data and a GPU to finish).
    # The federated simulation (§7, beyond the paper) at paper scale: all nine tasks,
    # 10 clients, 30 communication rounds, masks of 88%, 97% and 99% sparsity.
    "paper": ExperimentSettings(transfer_pairs=PAPER_TRANSFER_PAIRS, federated=FederatedSettings(
        pairs=PAPER_TRANSFER_PAIRS, clients=10, comm_rounds=30, rounds=(5, 8, 11))),
    # The book's default: the paper's design (5 domains, 5 seeds, TICKET-RESET and
    # TICKET-RANDOM everywhere, the nine transfer tasks of Fig. 4) at laptop scale.
    # Departures from §5.1, each measured in the ablation chapter: FDU-MTL's
    # 1,200/300/400 reviews per domain, a 48/24/24 CNN, reviews cut at 256 subwords,
    # p = 0.5 (7 rounds pass 99%; p = 0.35 needs 11), and lr 1e-2 for 8 epochs. The
    # learning rate is chosen on validation accuracy in FDU-MTL domains no claim uses
    # (benchmarks/lr_check.py: apparel and toys_games, 3 seeds, FULL-MODEL and every
    # round of TICKET-RESET and TICKET-RANDOM; criterion fixed before the run): mean
    # validation accuracy 65.6% at 1e-3, 73.6% at 3e-3, 75.3% at 1e-2. (Until issue 22 it
    # was 3e-3, chosen partly on Books, where the claims are tested.) Transfer retrains the
    # masks of rounds 3, 5 and 7 (87.5%, 96.9%, 99.2%) to save time; RANDOM-PRUNING runs
    # on Books only.
    "course": ExperimentSettings(
        data=DataSettings(n_train=1200, n_val=300, n_test=400),
        vocab=VocabSettings(max_len=256),
        model=ModelSettings(embed_dim=48, channels=24, hidden=24),
        train=TrainSettings(lr=1e-2, max_epochs=8, patience=None),
        prune=PruneSettings(prune_fraction_per_round=0.5, rounds=7),
        # Ten seeds, twice the paper's five (issue 22's power analysis: with five seeds
        # claims 2-7 sat on their thresholds, and a stability test over seeds cannot reach
        # α/3 below six seeds); the book then takes ~48 min on 2 cores.
        seeds=tuple(range(10)),
        # TICKET-REWIND (beyond the paper) runs where the control does: Books.
        strategies=("reset", "random", "random_pruning", "rewind"),
        control_domains=("books",),
        transfer_pairs=PAPER_TRANSFER_PAIRS,
        transfer_rounds=(3, 5, 7),
        # §7 simulated on one task (the first transfer pair: Books server, Electronics
        # clients): 4 clients, 10 communication rounds of one local epoch, the masks of
        # the transferred rounds.
        federated=FederatedSettings(),
    ),
    # Seconds: two domains, tiny model, a few rounds. For CI and nbval.
    "smoke": ExperimentSettings(
        data=DataSettings(domains=("books", "electronics"), n_train=200, n_val=100, n_test=100),
        vocab=VocabSettings(vocab_size=1000, max_len=200),
        model=ModelSettings(embed_dim=16, channels=8, hidden=8),
        train=TrainSettings(lr=1e-2, max_epochs=2, patience=None),
        prune=PruneSettings(prune_fraction_per_round=0.5, rounds=3, rewind_iterations=3),
        seeds=(0, 1),
        strategies=("reset", "random", "random_pruning", "rewind"),
        transfer_pairs=(("books", "electronics"),),
        federated=FederatedSettings(clients=2, comm_rounds=2, rounds=(1, 3)),
    ),
}


def get_profile(name: str) -> ExperimentSettings:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None
