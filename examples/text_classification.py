"""Text classification: Embedding + GRU on a small generated corpus of short reviews.

Each review says something good or bad about a dish, a match, a phone or the weather. Word order
matters: "not" and "never" flip an adjective ("the soup was not bad" is positive), and in a review
with "but" the clause after it decides ("the match was dull but the ending was superb"). A bag of
words cannot get these right; the GRU reads the tokens in order. Reviews have different lengths:
they are padded with id 0 and the true lengths go to fit(), so the GRU stops at each review's end
and LastStep reads its final state.

    python examples/text_classification.py             # well under a minute on 2 cores
    python examples/text_classification.py --quick     # a few seconds
"""
import argparse
import time

import numpy as np

import rnnfast as rf

SUBJECTS = ["the soup", "the pasta", "the dessert", "the match", "the ending", "the team",
            "this phone", "the battery", "the screen", "the weather", "the forecast", "the sky"]
GOOD = ["good", "great", "superb", "lovely", "fine", "excellent", "pleasant", "brilliant"]
BAD = ["bad", "awful", "dull", "poor", "terrible", "boring", "dreadful", "weak"]
VERBS = ["was", "is", "seemed", "felt"]
FILLERS = ["honestly", "i think", "overall", "to be fair", "as expected", "again", "today"]
LABELS = ("negative", "positive")
PAD, UNKNOWN = 0, 1


def clause(rng):
    """One clause and its polarity (1 good, 0 bad)."""
    positive = rng.random() < 0.5
    adjective = rng.choice(GOOD if positive else BAD)
    words = [rng.choice(SUBJECTS), rng.choice(VERBS)]
    negated = rng.random() < 0.35
    if negated:
        words.append(rng.choice(["not", "never"]))
    if rng.random() < 0.3:
        words.append(rng.choice(["really", "very", "quite"]))
    words.append(adjective)
    return " ".join(words), int(positive != negated)


def make_reviews(n, seed=0):
    """n reviews and their labels; with "but" the second clause decides."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        text, label = clause(rng)
        if rng.random() < 0.3:
            text = f"{rng.choice(FILLERS)} {text}"
        if rng.random() < 0.35:
            second, label = clause(rng)
            text = f"{text} but {second}"
        texts.append(text)
        labels.append(label)
    return texts, np.array(labels, dtype=np.int64)


def build_vocab(texts):
    words = sorted({w for t in texts for w in t.split()})
    return {w: i + 2 for i, w in enumerate(words)}          # 0 padding, 1 unknown


def encode(texts, vocab, max_len=None):
    """Token ids (N, T) padded with 0, and lengths (N,)."""
    seqs = [[vocab.get(w, UNKNOWN) for w in t.split()] for t in texts]
    lengths = np.array([len(s) for s in seqs])
    T = max_len or int(lengths.max())
    ids = np.full((len(seqs), T), PAD, dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = s[:T]
    return ids, np.minimum(lengths, T)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=2000, help="training reviews")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--bidirectional", action="store_true", help="read both ways")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a short run, e.g. for tests")
    args = parser.parse_args(argv)
    if args.quick:
        args.reviews, args.epochs = 400, 2

    texts, y = make_reviews(args.reviews + args.reviews // 4, seed=args.seed)
    n = args.reviews
    vocab = build_vocab(texts[:n])
    ids, lengths = encode(texts, vocab)
    print(f"{n} training / {len(texts) - n} test reviews, vocabulary of {len(vocab)} words, "
          f"lengths {lengths.min()} to {lengths.max()}; backend {rf.backend()}")
    print(f"e.g. {texts[0]!r} -> {LABELS[y[0]]}")

    D = 2 if args.bidirectional else 1
    model = rf.Sequential(
        rf.Embedding(len(vocab) + 2, 32, padding_idx=PAD, seed=args.seed),
        rf.GRU(32, args.hidden, batch_first=True, bidirectional=args.bidirectional,
               seed=args.seed),
        rf.LastStep(),
        rf.Linear(D * args.hidden, len(LABELS), seed=args.seed))
    start = time.perf_counter()
    history = rf.fit(model, ids[:n], y[:n], lengths=lengths[:n], loss=rf.CrossEntropyLoss(),
                     optimizer=rf.Adam(model.parameters(), lr=5e-3), epochs=args.epochs,
                     batch_size=32, validation_data=(ids[n:], y[n:], lengths[n:]),
                     clip_grad_norm=5.0, seed=args.seed)
    print(f"trained {len(history)} epochs in {time.perf_counter() - start:.1f} s")
    test = rf.evaluate(model, ids[n:], y[n:], rf.CrossEntropyLoss(), lengths=lengths[n:])
    print(f"test accuracy {100 * test['accuracy']:.1f}% (loss {test['loss']:.3f})")

    probes = ["the soup was good", "the soup was not good", "the battery was never bad",
              "the match was dull but the ending was superb",
              "honestly the screen is great but the battery is terrible"]
    probe_ids, probe_lengths = encode(probes, vocab)
    scores = model.predict(probe_ids, lengths=probe_lengths)
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    for text, row in zip(probes, p):
        print(f"  {LABELS[row.argmax()]:<8} {row.max():.2f}  {text}")
    return {"accuracy": test["accuracy"], "loss": history["loss"]}


if __name__ == "__main__":
    main()
