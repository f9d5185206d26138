"""Tiny pretrained-style models, trained in seconds on a CPU and saved with ``save_pretrained``: what the tests
load in place of Stable Diffusion, CLIP and a pretrained DDPM (none can be downloaded here), and what the
end-to-end check of the pretrained path runs (docs/results.md). Not for results: they know only the images they
were trained on."""
