#!/usr/bin/python3
"""Writes the image-folder fixture tests/data/io/folder/ and torchvision's evaluation-transform output
for it, tests/data/io/folder_golden.h5 (used by tests/test_io.cpp).

Run with Debian's /usr/bin/python3 (torch, torchvision, PIL, h5py) from the repository root:
    /usr/bin/python3 tests/data/io/make_image_folder.py
The transform is the torchvision ImageNet evaluation recipe scaled to the model's input size S:
Resize(round(S * 256 / 224)) (PIL bilinear), CenterCrop(S), ToTensor, Normalize(mean, std);
for a 1-channel model the image is converted to "L" first (transforms.Grayscale before Resize).
"""
import os
import shutil

import h5py
import numpy as np
import torch
from PIL import Image
from torchvision import datasets, transforms

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, "folder")
shutil.rmtree(root, ignore_errors=True)
rng = np.random.RandomState(0)


def smooth(h, w, c):
    """Random but image-like content: a blurred noise field plus a gradient, in 0..255."""
    x = rng.rand(h // 4 + 2, w // 4 + 2, c)
    big = np.kron(x, np.ones((4, 4, 1)))[:h, :w]
    grad = np.linspace(0, 1, w)[None, :, None]
    img = 0.6 * big + 0.4 * grad + 0.15 * rng.rand(h, w, c)
    return np.clip(img / 1.15 * 255, 0, 255).astype(np.uint8)


def save(cls, name, arr, mode, fmt, **kw):
    os.makedirs(os.path.join(root, cls), exist_ok=True)
    im = Image.fromarray(arr if arr.shape[2] > 1 else arr[:, :, 0])
    if mode == "P":
        im = im.convert("P", palette=Image.ADAPTIVE, colors=32)
    elif mode != im.mode:
        im = im.convert(mode)
    im.save(os.path.join(root, cls, name), fmt, **kw)


save("cat", "a_rgb.png", smooth(40, 31, 3), "RGB", "PNG")            # downscale, portrait
save("cat", "b_gray.png", smooth(17, 25, 1), "L", "PNG")             # upscale, landscape
save("cat", "c_q90.jpg", smooth(45, 60, 3), "RGB", "JPEG", quality=90)
save("dog", "a_rgba.png", smooth(27, 27, 4), "RGBA", "PNG")          # exactly the resize size
save("dog", "b_palette.png", smooth(33, 50, 3), "P", "PNG")
save("dog", "c_gray.JPG", smooth(30, 29, 1), "L", "JPEG", quality=85)  # upper-case extension
save("zebra", "a_big.jpeg", smooth(64, 48, 3), "RGB", "JPEG", quality=75)
save("zebra", "b_odd.png", smooth(26, 35, 3), "RGB", "PNG")          # odd crop offsets
with open(os.path.join(root, "zebra", "notes.txt"), "w") as f:       # not an image: ignored
    f.write("ignored\n")


def run(size, mean, std, gray):
    t = [transforms.Grayscale(1)] if gray else []
    t += [transforms.Resize(round(size * 256 / 224)), transforms.CenterCrop(size), transforms.ToTensor(),
          transforms.Normalize(mean, std)]
    ds = datasets.ImageFolder(root, transform=transforms.Compose(t))
    xs, ys = zip(*[ds[i] for i in range(len(ds))])
    return torch.stack(xs).numpy(), np.array(ys, dtype=np.int32), ds.classes, [p for p, _ in ds.samples]


rgb, labels, classes, files = run(24, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], False)
gray, labels_g, _, _ = run(20, [0.5], [0.25], True)
assert (labels == labels_g).all()
with h5py.File(os.path.join(here, "folder_golden.h5"), "w") as f:
    f.create_dataset("rgb24", data=rgb, compression="gzip")
    f.create_dataset("gray20", data=gray, compression="gzip")
    f.create_dataset("labels", data=labels)
    f.attrs["classes"] = ",".join(classes)
    f.attrs["files"] = ",".join(os.path.relpath(p, root) for p in files)
print(classes, [os.path.relpath(p, root) for p in files], rgb.shape, gray.shape)
