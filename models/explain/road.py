"""ROAD's noisy linear imputation (Rong, Leemann, Borisov, Kasneci & Kasneci, "A Consistent and
Efficient Evaluation Strategy for Attribution Methods", ICML 2022), batched in torch.

A removed pixel takes the weighted mean of its 8 neighbours (weight 1/6 for the four sharing a side,
1/12 for the diagonal four, only those inside the image), the kept pixels being fixed: one sparse
linear system per image and channel, whose solution carries no trace of the removed pixels'
shape (a grey square does: the model may answer the square, not the missing evidence). Noise of
standard deviation `noise` (0.01 in the paper's code, in the input's units) is then added to the
imputed pixels. The reference solves each system with scipy's `spsolve`; here all images and
channels are solved together by conjugate gradients, the matrix-vector product being one 3 x 3
convolution, to a relative residual of `tolerance`. The system is symmetric positive definite
whenever the image keeps a pixel: weighted by the sums of their neighbours' weights, the equations
read W_u x_u - sum_v w_uv x_v = sum_k w_uk x_k over removed neighbours v and kept neighbours k. An
image with nothing kept has no information to impute from: its pixels become 0 (the normalised
mean, as the grey fill) plus the noise.
"""
import torch
import torch.nn.functional as F

NOISE = 0.01
TOLERANCE = 1e-4  # relative residual at which conjugate gradients stop: errors far below the noise
MAX_ITERATIONS = 2000


def neighbour_kernel(dtype=torch.float32, device=None) -> torch.Tensor:
    """(1, 1, 3, 3) the neighbours' weights."""
    side, corner = 1 / 6, 1 / 12
    return torch.tensor([[corner, side, corner], [side, 0.0, side], [corner, side, corner]],
                        dtype=dtype, device=device)[None, None]


def linear_imputation(images: torch.Tensor, removed: torch.Tensor, tolerance: float = TOLERANCE,
                      max_iterations: int = MAX_ITERATIONS) -> torch.Tensor:
    """`images` (B, C, H, W) with the pixels where `removed` (B, H, W) is True replaced by the solution
    of the neighbour-mean system, without noise."""
    b, c, h, w = images.shape
    dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
    x_known = images.to(dtype).reshape(b * c, 1, h, w)
    unknown = removed.to(images.device)[:, None].expand(b, c, h, w).reshape(b * c, 1, h, w).to(dtype)
    kernel = neighbour_kernel(dtype, images.device)
    neighbours = lambda x: F.conv2d(x, kernel, padding=1)  # noqa: E731
    weight_sum = neighbours(torch.ones(1, 1, h, w, dtype=dtype, device=images.device))

    def system(x):  # the matrix on the removed pixels, zero elsewhere
        return unknown * (weight_sum * x - neighbours(x * unknown))

    rhs = unknown * neighbours(x_known * (1 - unknown))
    x = torch.zeros_like(rhs)
    residual = rhs.clone()
    direction = residual.clone()
    rr = residual.square().sum(dim=(1, 2, 3), keepdim=True)
    stop = (tolerance ** 2) * rr
    for _ in range(max_iterations):
        if bool((rr <= stop).all()):
            break
        product = system(direction)
        curvature = (direction * product).sum(dim=(1, 2, 3), keepdim=True)
        step = torch.where(curvature > 0, rr / curvature.where(curvature > 0, torch.ones_like(curvature)), 0.0)
        x = x + step * direction
        residual = residual - step * product
        rr_next = residual.square().sum(dim=(1, 2, 3), keepdim=True)
        direction = residual + torch.where(rr > 0, rr_next / rr.where(rr > 0, torch.ones_like(rr)), 0.0) * direction
        rr = rr_next
    filled = torch.where(unknown.bool(), x, x_known)
    return filled.reshape(b, c, h, w).to(images.dtype)


def noisy_linear_imputation(images: torch.Tensor, removed: torch.Tensor, noise: float = NOISE,
                            generator: torch.Generator = None, tolerance: float = TOLERANCE) -> torch.Tensor:
    """ROAD's imputation: `linear_imputation` plus Gaussian noise of std `noise` on the removed pixels
    (drawn on the CPU from `generator`, so a seeded run gives the same images on any device)."""
    filled = linear_imputation(images, removed, tolerance)
    if noise:
        jitter = torch.randn(images.shape, generator=generator).to(images.device, images.dtype)
        filled = filled + noise * jitter * removed.to(images.device)[:, None]
    return filled
