"""Make ``contextual_attention_reference.npz`` with the official TensorFlow contextual attention.

Not run by the tests. Needs TensorFlow (made with tensorflow-cpu 2.21 in graph mode,
``tf.compat.v1``) in a separate environment::

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    TF_ENABLE_ONEDNN_OPTS=0 /tmp/tfvenv/bin/python tests/data/make_contextual_attention_reference.py

``official_contextual_attention`` is ``contextual_attention`` of JiahuiYu/generative_inpainting
(``inpaint_ops.py``, master = v1.0.0 for this function) with the TF1 names spelled through
``tf.compat.v1`` and the optical-flow visualisation (a numpy ``py_func``) left out; ``resize`` is
neuralgym's (``neuralgym/ops/layers.py``: ``align_corners=True``). Arrays are NHWC, the mask is
the official one (1 = hole, one mask for the batch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1
tf1.disable_eager_execution()


def resize(x, scale=2, to_shape=None, align_corners=True, func=None):
    """neuralgym.ops.layers.resize (static shapes)."""
    xs = x.get_shape().as_list()
    new_xs = [int(xs[1] * scale), int(xs[2] * scale)]
    if to_shape is None:
        return func(x, new_xs, align_corners=align_corners)
    return func(x, [to_shape[0], to_shape[1]], align_corners=align_corners)


def official_contextual_attention(
    f, b, mask=None, ksize=3, stride=1, rate=1, fuse_k=3, softmax_scale=10.0, fuse=True
):
    nearest = tf1.image.resize_nearest_neighbor
    raw_fs = tf.shape(f)
    raw_int_fs = f.get_shape().as_list()
    raw_int_bs = b.get_shape().as_list()
    kernel = 2 * rate
    raw_w = tf1.extract_image_patches(
        b,
        [1, kernel, kernel, 1],
        [1, rate * stride, rate * stride, 1],
        [1, 1, 1, 1],
        padding="SAME",
    )
    raw_w = tf.reshape(raw_w, [raw_int_bs[0], -1, kernel, kernel, raw_int_bs[3]])
    raw_w = tf.transpose(raw_w, [0, 2, 3, 4, 1])
    f = resize(f, scale=1.0 / rate, func=nearest)
    b = resize(b, to_shape=[int(raw_int_bs[1] / rate), int(raw_int_bs[2] / rate)], func=nearest)
    if mask is not None:
        mask = resize(mask, scale=1.0 / rate, func=nearest)
    fs = tf.shape(f)
    int_fs = f.get_shape().as_list()
    f_groups = tf.split(f, int_fs[0], axis=0)
    bs = tf.shape(b)
    int_bs = b.get_shape().as_list()
    w = tf1.extract_image_patches(
        b, [1, ksize, ksize, 1], [1, stride, stride, 1], [1, 1, 1, 1], padding="SAME"
    )
    w = tf.reshape(w, [int_fs[0], -1, ksize, ksize, int_fs[3]])
    w = tf.transpose(w, [0, 2, 3, 4, 1])
    if mask is None:
        mask = tf.zeros([1, bs[1], bs[2], 1])
    m = tf1.extract_image_patches(
        mask, [1, ksize, ksize, 1], [1, stride, stride, 1], [1, 1, 1, 1], padding="SAME"
    )
    m = tf.reshape(m, [1, -1, ksize, ksize, 1])
    m = tf.transpose(m, [0, 2, 3, 4, 1])
    m = m[0]
    mm = tf.cast(tf.equal(tf.reduce_mean(m, axis=[0, 1, 2], keepdims=True), 0.0), tf.float32)
    w_groups = tf.split(w, int_bs[0], axis=0)
    raw_w_groups = tf.split(raw_w, int_bs[0], axis=0)
    y = []
    k = fuse_k
    scale = softmax_scale
    fuse_weight = tf.reshape(tf.eye(k), [k, k, 1, 1])
    for xi, wi, raw_wi in zip(f_groups, w_groups, raw_w_groups, strict=True):
        wi = wi[0]
        wi_normed = wi / tf.maximum(tf.sqrt(tf.reduce_sum(tf.square(wi), axis=[0, 1, 2])), 1e-4)
        yi = tf.nn.conv2d(xi, wi_normed, strides=[1, 1, 1, 1], padding="SAME")
        if fuse:
            yi = tf.reshape(yi, [1, fs[1] * fs[2], bs[1] * bs[2], 1])
            yi = tf.nn.conv2d(yi, fuse_weight, strides=[1, 1, 1, 1], padding="SAME")
            yi = tf.reshape(yi, [1, fs[1], fs[2], bs[1], bs[2]])
            yi = tf.transpose(yi, [0, 2, 1, 4, 3])
            yi = tf.reshape(yi, [1, fs[1] * fs[2], bs[1] * bs[2], 1])
            yi = tf.nn.conv2d(yi, fuse_weight, strides=[1, 1, 1, 1], padding="SAME")
            yi = tf.reshape(yi, [1, fs[2], fs[1], bs[2], bs[1]])
            yi = tf.transpose(yi, [0, 2, 1, 4, 3])
        yi = tf.reshape(yi, [1, fs[1], fs[2], bs[1] * bs[2]])
        yi *= mm
        yi = tf.nn.softmax(yi * scale, 3)
        yi *= mm
        wi_center = raw_wi[0]
        yi = (
            tf.nn.conv2d_transpose(
                yi, wi_center, tf.concat([[1], raw_fs[1:]], axis=0), strides=[1, rate, rate, 1]
            )
            / 4.0
        )
        y.append(yi)
    y = tf.concat(y, axis=0)
    y.set_shape(raw_int_fs)
    return y


def hole_box(h, w, top, left, bh, bw):
    m = np.zeros((1, h, w, 1), np.float32)
    m[:, top : top + bh, left : left + bw] = 1.0
    return m


CASES = {
    # name: (N, H, W, C, hole box (top, left, height, width) or None, separate b, kwargs)
    "square_border_hole": (2, 12, 12, 2, (0, 4, 6, 8), False, {"rate": 2}),
    "nonsquare_20x28": (1, 20, 28, 2, (5, 9, 9, 12), False, {"rate": 2}),
    "nofuse_separate_b": (2, 12, 16, 2, (2, 2, 6, 6), True, {"rate": 2, "fuse": False}),
    "no_mask_scale5": (1, 16, 20, 2, None, False, {"rate": 2, "softmax_scale": 5.0}),
    "rate1": (2, 10, 12, 2, (3, 0, 4, 5), False, {"rate": 1}),
}


def main() -> None:
    rng = np.random.default_rng(2018)
    arrays: dict[str, np.ndarray] = {}
    for name, (n, h, w, c, box, separate_b, kwargs) in CASES.items():
        # quarter-integer inputs in [-2, 2]: exact in float32 and small in the .npz
        f = (rng.integers(-8, 9, (n, h, w, c)) / 4).astype(np.float32)
        b = (rng.integers(-8, 9, (n, h, w, c)) / 4).astype(np.float32) if separate_b else f
        mask = None if box is None else hole_box(h, w, *box)
        graph = tf1.Graph()
        with graph.as_default(), tf1.Session(graph=graph) as sess:
            y = official_contextual_attention(
                tf.constant(f),
                tf.constant(b),
                None if mask is None else tf.constant(mask),
                ksize=3,
                stride=1,
                **kwargs,
            )
            arrays[f"{name}/y"] = sess.run(y)
        arrays[f"{name}/f"] = f
        if separate_b:
            arrays[f"{name}/b"] = b
        if mask is not None:
            arrays[f"{name}/mask"] = mask
    out = Path(__file__).with_name("contextual_attention_reference.npz")
    np.savez_compressed(out, **arrays)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
