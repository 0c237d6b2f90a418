"""Character-level text generation: an LSTM learns a short text, then writes more of it.

Training reads windows of the text (examples/data/lighthouse.txt, or ``--text``) and learns to
predict each next character: Embedding -> LSTM -> Linear applied at every step, cross-entropy on
(B, T, C) scores. Generation then runs the trained layers by hand, one character at a time, under
``rnnfast.no_grad()``: the LSTM's (h, c) state returned by one call is passed to the next, so the
model never re-reads what it has written. ``--temperature`` trades safety (low) for variety (high).

    python examples/char_generation.py                 # about a minute on 2 cores
    python examples/char_generation.py --quick         # a few seconds
"""
import argparse
import os
import time

import numpy as np

import rnnfast as rf

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TEXT = os.path.join(HERE, "data", "lighthouse.txt")


def load_text(path):
    with open(path, encoding="utf-8") as f:
        return " ".join(f.read().split())      # one line, single spaces


def make_windows(ids, width, stride):
    """Inputs ids[i:i+width] and targets ids[i+1:i+width+1]: X, Y (N, width)."""
    starts = np.arange(0, len(ids) - width, stride)     # the last target is ids[-1]
    idx = starts[:, None] + np.arange(width)[None, :]
    return ids[idx], ids[idx + 1]


def sample(model, prompt, length, char_to_id, id_to_char, temperature=0.8, seed=0):
    """Continue ``prompt`` by ``length`` characters, one step at a time, carrying the LSTM state.

    model is Sequential(Embedding, LSTM, Linear); each call feeds one character, x (1, 1), through
    the three layers and keeps the LSTM's (h, c) for the next call.
    """
    embedding, lstm, head = model[0], model[1], model[2]
    if not prompt:
        raise ValueError("the prompt needs at least one character")
    unknown = sorted(set(prompt) - set(char_to_id))
    if unknown:
        raise ValueError(f"the prompt has characters the model never saw: {unknown}")
    ids = [char_to_id[c] for c in prompt]
    rng = np.random.default_rng(seed)
    state = None                      # zeros: the LSTM starts from scratch
    out = []
    was_training = model.training
    with rf.no_grad():
        model.eval()
        for i in range(len(prompt) + length - 1):     # the last character is never fed back
            x = embedding(np.array([[ids[i]]]))                 # (1, 1, E)
            h, state = lstm(x, state)                           # h (1, 1, H); state (h_n, c_n)
            if i + 1 < len(ids):
                continue                                        # still reading the prompt
            logits = head(h[:, -1]).astype(np.float64)[0] / max(temperature, 1e-6)
            p = np.exp(logits - logits.max())
            nxt = int(rng.choice(len(p), p=p / p.sum()))
            ids.append(nxt)
            out.append(id_to_char[nxt])
        model.train(was_training)
    return prompt + "".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", default=DEFAULT_TEXT, help="a UTF-8 text file to learn")
    parser.add_argument("--width", type=int, default=48, help="characters per training window")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--length", type=int, default=200, help="characters to generate")
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--prompt", default="The keeper ")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a short run, e.g. for tests")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.hidden, args.length = 2, 32, 40

    text = load_text(args.text)
    chars = sorted(set(text))
    char_to_id = {c: i for i, c in enumerate(chars)}
    ids = np.array([char_to_id[c] for c in text], dtype=np.int64)
    X, Y = make_windows(ids, args.width, stride=3)
    print(f"{len(text)} characters, {len(chars)} distinct; {len(X)} windows of {args.width}; "
          f"backend {rf.backend()}")

    V = len(chars)
    model = rf.Sequential(rf.Embedding(V, 16, seed=args.seed),
                          rf.LSTM(16, args.hidden, batch_first=True, seed=args.seed),
                          rf.Linear(args.hidden, V, seed=args.seed))
    start = time.perf_counter()
    history = rf.fit(model, X, Y, loss=rf.CrossEntropyLoss(),
                     optimizer=rf.Adam(model.parameters(), lr=1e-2), epochs=args.epochs,
                     batch_size=32, clip_grad_norm=1.0, seed=args.seed)
    loss = history["loss"][-1]
    print(f"trained {len(history)} epochs in {time.perf_counter() - start:.1f} s; "
          f"loss {loss:.3f} nats/char (perplexity {np.exp(loss):.1f}; uniform would be {V})")

    id_to_char = dict(enumerate(chars))
    samples = {}
    for temperature in (args.temperature, 1.0):
        samples[temperature] = sample(model, args.prompt, args.length, char_to_id, id_to_char,
                                      temperature=temperature, seed=args.seed)
        print(f"\ntemperature {temperature}:\n{samples[temperature]}")
    return {"loss": history["loss"], "samples": samples}


if __name__ == "__main__":
    main()
