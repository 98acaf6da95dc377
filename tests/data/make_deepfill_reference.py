"""Make ``deepfill_reference.npz``: the official DeepFill v1/v2 generators and v1 critics in TF.

Not run by the tests; run like ``make_contextual_attention_reference.py`` (TensorFlow in its own
environment). ``inpaint_net`` transcribes ``build_inpaint_net`` of JiahuiYu/generative_inpainting
(v1.0.0 branch for v1, master for v2) call for call, with ``cnum`` as an argument and the
kernels taken from :func:`weights` (numpy, seeded) instead of TF variables. ``gen_conv`` and
``gen_deconv`` are the official ones (``inpaint_ops.py``) written with ``tf.nn`` ops:
``tf.layers.conv2d(padding='SAME', dilation_rate=r)`` is ``tf.nn.conv2d(padding='SAME',
dilations=r)``. The test draws the same weights in the same order (official creation order) and
compares wmi's ``forward_signed`` with the stored outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from make_contextual_attention_reference import official_contextual_attention, resize

tf1 = tf.compat.v1
tf1.disable_eager_execution()

SIZE = (16, 24)
CNUM = 8
HOLE = (11, 10, 3, 6)  # top, left, height, width: mask_s differs from floor-nearest
SEED = 7


def weights(seed: int, scale: float):
    """Kernel (HWIO) and bias of each conv in creation order; the test uses the same draws.

    v2 gets ``scale = 2`` (v1: 1): gating halves the signal at every layer, and with unit-gain
    kernels the output would hardly depend on the input or the padding.
    """
    rng = np.random.default_rng(seed)

    def draw(k: int, cin: int, cout: int):
        kernel = scale * rng.standard_normal((k, k, cin, cout)) / np.sqrt(k * k * cin)
        bias = 0.1 * rng.standard_normal(cout)
        return kernel.astype(np.float32), bias.astype(np.float32)

    return draw


def make_ops(draw, gated: bool):
    def gen_conv(x, cnum, ksize, stride=1, rate=1, name="conv", activation=tf.nn.elu):
        cin = x.get_shape().as_list()[-1]
        kernel, bias = draw(ksize, cin, cnum)
        x = tf.nn.conv2d(x, kernel, [1, stride, stride, 1], "SAME", dilations=[1, rate, rate, 1])
        x = x + bias
        if not gated:
            return x if activation is None else activation(x)
        if cnum == 3 or activation is None:
            return x
        x, y = tf.split(x, 2, 3)
        return activation(x) * tf.nn.sigmoid(y)

    def gen_deconv(x, cnum, name="upsample"):
        x = resize(x, func=tf1.image.resize_nearest_neighbor)
        return gen_conv(x, cnum, 3, 1, name=name + "_conv")

    return gen_conv, gen_deconv


def inpaint_net(x, mask, version: int, cnum: int, draw):
    """build_inpaint_net of v1.0.0 (version 1) or master (version 2)."""
    gen_conv, gen_deconv = make_ops(draw, gated=version == 2)
    xin = x
    ones_x = tf.ones_like(x)[:, :, :, 0:1]
    x = tf.concat([x, ones_x, ones_x * mask], axis=3)
    x = gen_conv(x, cnum, 5, 1, name="conv1")
    x = gen_conv(x, 2 * cnum, 3, 2, name="conv2_downsample")
    x = gen_conv(x, 2 * cnum, 3, 1, name="conv3")
    x = gen_conv(x, 4 * cnum, 3, 2, name="conv4_downsample")
    x = gen_conv(x, 4 * cnum, 3, 1, name="conv5")
    x = gen_conv(x, 4 * cnum, 3, 1, name="conv6")
    mask_s = resize(mask, to_shape=x.get_shape().as_list()[1:3],
                    func=tf1.image.resize_nearest_neighbor)  # fmt: skip
    x = gen_conv(x, 4 * cnum, 3, rate=2, name="conv7_atrous")
    x = gen_conv(x, 4 * cnum, 3, rate=4, name="conv8_atrous")
    x = gen_conv(x, 4 * cnum, 3, rate=8, name="conv9_atrous")
    x = gen_conv(x, 4 * cnum, 3, rate=16, name="conv10_atrous")
    x = gen_conv(x, 4 * cnum, 3, 1, name="conv11")
    x = gen_conv(x, 4 * cnum, 3, 1, name="conv12")
    x = gen_deconv(x, 2 * cnum, name="conv13_upsample")
    x = gen_conv(x, 2 * cnum, 3, 1, name="conv14")
    x = gen_deconv(x, cnum, name="conv15_upsample")
    x = gen_conv(x, cnum // 2, 3, 1, name="conv16")
    x = gen_conv(x, 3, 3, 1, activation=None, name="conv17")
    x = tf.clip_by_value(x, -1.0, 1.0) if version == 1 else tf.nn.tanh(x)
    x_stage1 = x
    x = x * mask + xin * (1.0 - mask)
    xnow = tf.concat([x, ones_x, ones_x * mask], axis=3) if version == 1 else x
    x = gen_conv(xnow, cnum, 5, 1, name="xconv1")
    x = gen_conv(x, cnum, 3, 2, name="xconv2_downsample")
    x = gen_conv(x, 2 * cnum, 3, 1, name="xconv3")
    x = gen_conv(x, 2 * cnum, 3, 2, name="xconv4_downsample")
    x = gen_conv(x, 4 * cnum, 3, 1, name="xconv5")
    x = gen_conv(x, 4 * cnum, 3, 1, name="xconv6")
    x = gen_conv(x, 4 * cnum, 3, rate=2, name="xconv7_atrous")
    x = gen_conv(x, 4 * cnum, 3, rate=4, name="xconv8_atrous")
    x = gen_conv(x, 4 * cnum, 3, rate=8, name="xconv9_atrous")
    x = gen_conv(x, 4 * cnum, 3, rate=16, name="xconv10_atrous")
    x_hallu = x
    x = gen_conv(xnow, cnum, 5, 1, name="pmconv1")
    x = gen_conv(x, cnum, 3, 2, name="pmconv2_downsample")
    x = gen_conv(x, 2 * cnum, 3, 1, name="pmconv3")
    x = gen_conv(x, 4 * cnum, 3, 2, name="pmconv4_downsample")
    x = gen_conv(x, 4 * cnum, 3, 1, name="pmconv5")
    x = gen_conv(x, 4 * cnum, 3, 1, name="pmconv6", activation=tf.nn.relu)
    x = official_contextual_attention(x, x, mask_s, 3, 1, rate=2)
    x = gen_conv(x, 4 * cnum, 3, 1, name="pmconv9")
    x = gen_conv(x, 4 * cnum, 3, 1, name="pmconv10")
    pm = x
    x = tf.concat([x_hallu, pm], axis=3)
    x = gen_conv(x, 4 * cnum, 3, 1, name="allconv11")
    x = gen_conv(x, 4 * cnum, 3, 1, name="allconv12")
    x = gen_deconv(x, 2 * cnum, name="allconv13_upsample")
    x = gen_conv(x, 2 * cnum, 3, 1, name="allconv14")
    x = gen_deconv(x, cnum, name="allconv15_upsample")
    x = gen_conv(x, cnum // 2, 3, 1, name="allconv16")
    x = gen_conv(x, 3, 3, 1, activation=None, name="allconv17")
    x_stage2 = tf.clip_by_value(x, -1.0, 1.0) if version == 1 else tf.nn.tanh(x)
    return x_stage1, x_stage2


def critic(x, multiples, cnum, draw):
    """build_wgan_local/global_discriminator + dout_*_fc of v1.0.0: dis_conv ×4, flatten, dense.

    ``dis_conv`` (v1.0.0) is ``tf.layers.conv2d(x, cnum, 5, 2, 'SAME')`` and leaky ReLU (0.2);
    ``flatten`` keeps NHWC order.
    """
    for m in multiples:
        kernel, bias = draw(5, x.get_shape().as_list()[-1], m * cnum)
        x = tf.nn.leaky_relu(tf.nn.conv2d(x, kernel, [1, 2, 2, 1], "SAME") + bias)
    x = tf.reshape(x, [x.get_shape().as_list()[0], -1])
    kernel, bias = draw(1, x.get_shape().as_list()[-1], 1)
    return tf.matmul(x, kernel[0, 0]) + bias


CRITICS = {"local": ((1, 2, 4, 8), (24, 16)), "global": ((1, 2, 4, 4), (16, 40))}


def inputs():
    """Image in [-1, 1] (NHWC, quarter steps) and the official mask (1 = hole)."""
    rng = np.random.default_rng(SEED)
    image = (rng.integers(-4, 5, (1, *SIZE, 3)) / 4).astype(np.float32)
    mask = np.zeros((1, *SIZE, 1), np.float32)
    top, left, h, w = HOLE
    mask[:, top : top + h, left : left + w] = 1.0
    return image, mask


def main() -> None:
    image, mask = inputs()
    arrays = {}
    for version in (1, 2):
        graph = tf1.Graph()
        with graph.as_default(), tf1.Session(graph=graph) as sess:
            xin = tf.constant(image * (1.0 - mask))
            x1, x2 = inpaint_net(
                xin, tf.constant(mask), version, CNUM, weights(SEED + version, float(version))
            )
            arrays[f"v{version}/x1"], arrays[f"v{version}/x2"] = sess.run([x1, x2])
    rng = np.random.default_rng(SEED)
    for name, (multiples, size) in CRITICS.items():
        x = (rng.integers(-4, 5, (2, *size, 3)) / 4).astype(np.float32)
        graph = tf1.Graph()
        with graph.as_default(), tf1.Session(graph=graph) as sess:
            y = critic(tf.constant(x), multiples, 4, weights(SEED + 10, 1.0))
            arrays[f"{name}/x"], arrays[f"{name}/y"] = x, sess.run(y)
    out = Path(__file__).with_name("deepfill_reference.npz")
    np.savez_compressed(out, **arrays)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
