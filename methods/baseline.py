"""The reference: train on the noisy labels as given, no detection, no refurbishment."""

from bench import Recipe, register_recipe

register_recipe(
    Recipe(
        name="baseline",
        description="Standard U-Net training on the given (noisy) labels for the protocol's epochs.",
    )
)
