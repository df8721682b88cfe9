"""2-D contact geometry of the planar backend: circles and oriented boxes on the floor plane.

Every routine works elementwise over any leading shapes that broadcast together (one entry per
geom pair): the planar World calls each once per block of pairs, one set of geoms against
another, with no Python loop over pairs at run time. Each returns, for geoms 1 and 2:
  depth [...]: penetration, > 0 when they overlap (minus the gap otherwise, where cheap);
  normal [..., 2]: unit vector from geom 1 towards geom 2 (moving 2 along it separates them);
  point [..., 2]: the contact point, midway through the overlap.
The values are meaningful only where depth > 0; elsewhere they are finite.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

_TINY = 1e-12


def _sign(x: jax.Array) -> jax.Array:
  """+1 or -1 (never 0, so a centred pair still gets a normal)."""
  return jnp.where(x >= 0, 1.0, -1.0)


def fence(*xs: jax.Array):
  """xs unchanged (for finite values), but computed once.

  XLA:CPU copies cheap elementwise producers into every fusion that reads them; the contact
  values feed many fusions (up to nine copies of the collision pass). It never copies a
  division, so x / (1 + 0 x) makes it store x.
  """
  out = tuple(x / (1.0 + 0.0 * x) for x in xs)
  return out if len(out) > 1 else out[0]


def heading(yaw: jax.Array) -> jax.Array:
  """[..., 2]: the unit vector (cos, sin) of yaw [...]; the routines take headings, not
  angles, so each body's cos and sin are computed once, not once per pair."""
  return jnp.stack([jnp.cos(yaw), jnp.sin(yaw)], axis=-1)


def rotate(rot: jax.Array, v: jax.Array) -> jax.Array:
  """[..., 2]: v [..., 2] turned by the heading rot [..., 2] (counter-clockwise)."""
  c, s = rot[..., 0], rot[..., 1]
  return jnp.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], axis=-1)


def circle_circle(c1: jax.Array, r1: jax.Array, c2: jax.Array, r2: jax.Array):
  """Circles centred at c1, c2 [..., 2] of radii r1, r2 [...]: (depth, normal, point)."""
  d = c2 - c1
  dist2 = d[..., 0] ** 2 + d[..., 1] ** 2
  far = dist2 > _TINY
  dist = jnp.sqrt(jnp.where(far, dist2, 1.0))
  nx = jnp.where(far, d[..., 0] / dist, 1.0)
  ny = jnp.where(far, d[..., 1] / dist, 0.0)
  dist = jnp.where(far, dist, 0.0)
  depth = r1 + r2 - dist
  reach = r1 - 0.5 * depth
  depth, nx, ny, px, py = fence(depth, nx, ny, c1[..., 0] + nx * reach, c1[..., 1] + ny * reach)
  return depth, jnp.stack([nx, ny], axis=-1), jnp.stack([px, py], axis=-1)


def circle_box(c: jax.Array, r: jax.Array, b: jax.Array, rot: jax.Array, half: jax.Array):
  """Circle (centre c [..., 2], radius r [...]) and box (centre b [..., 2], heading rot
  [..., 2] = (cos, sin) of its yaw, half-sizes half [..., 2]): (depth, normal from the circle
  to the box, point)."""
  cos, sin = rot[..., 0], rot[..., 1]
  dx, dy = c[..., 0] - b[..., 0], c[..., 1] - b[..., 1]
  px, py = cos * dx + sin * dy, -sin * dx + cos * dy  # circle centre in the box frame
  hx, hy = half[..., 0], half[..., 1]
  qx, qy = jnp.clip(px, -hx, hx), jnp.clip(py, -hy, hy)  # closest box point
  ex, ey = px - qx, py - qy
  dist2 = ex ** 2 + ey ** 2
  outside = dist2 > _TINY
  dist = jnp.sqrt(jnp.where(outside, dist2, 1.0))
  # Centre inside the box: push out through the nearest face.
  fx, fy = hx - jnp.abs(px), hy - jnp.abs(py)
  x_face = fx < fy
  sx, sy = _sign(px), _sign(py)
  # Local normal from the box to the circle, the box surface point and the depth.
  lnx = jnp.where(outside, ex / dist, jnp.where(x_face, sx, 0.0))
  lny = jnp.where(outside, ey / dist, jnp.where(x_face, 0.0, sy))
  sqx = jnp.where(outside | ~x_face, qx, sx * hx)
  sqy = jnp.where(outside | x_face, qy, sy * hy)
  depth = jnp.where(outside, r - dist, r + jnp.minimum(fx, fy))
  depth, lnx, lny, sqx, sqy = fence(depth, lnx, lny, sqx, sqy)
  # To world: the normal flips to point from the circle to the box.
  nx, ny = -(cos * lnx - sin * lny), -(sin * lnx + cos * lny)
  sx_w = b[..., 0] + cos * sqx - sin * sqy
  sy_w = b[..., 1] + sin * sqx + cos * sqy
  # Midway between the box surface point and the circle's deepest point c + r n.
  nx, ny, px, py = fence(nx, ny, 0.5 * (sx_w + c[..., 0] + r * nx),
                         0.5 * (sy_w + c[..., 1] + r * ny))
  return depth, jnp.stack([nx, ny], axis=-1), jnp.stack([px, py], axis=-1)


def box_box(c1: jax.Array, rot1: jax.Array, half1: jax.Array,
            c2: jax.Array, rot2: jax.Array, half2: jax.Array):
  """Oriented boxes (centres [..., 2], headings [..., 2], half-sizes [..., 2]): separating axes.

  depth = the smallest overlap over the four face normals (negative: a separating gap);
  normal = that face normal, turned towards box 2. The face's box is the reference, the other
  the incident box; point = the average of the corners of the incident box's face (the one
  most against the normal) behind the reference face, each weighted by its depth, moved half of it back and clamped to the face's span (a
  face-on-face contact gets the centre of the overlap, not a corner that flips with every
  wobble).
  """
  c1x, s1x = rot1[..., 0], rot1[..., 1]
  c2x, s2x = rot2[..., 0], rot2[..., 1]
  dx, dy = c2[..., 0] - c1[..., 0], c2[..., 1] - c1[..., 1]
  h1x, h1y, h2x, h2y = half1[..., 0], half1[..., 1], half2[..., 0], half2[..., 1]
  ac = jnp.abs(c1x * c2x + s1x * s2x)  # |cos| and |sin| of the relative yaw
  as_ = jnp.abs(c1x * s2x - s1x * c2x)
  # Axes u1 = (c1, s1), v1 = (-s1, c1), u2, v2: centre separation along each, and overlap =
  # (projected half-width of 1) + (of 2) - separation.
  d_u1, d_v1 = c1x * dx + s1x * dy, -s1x * dx + c1x * dy
  d_u2, d_v2 = c2x * dx + s2x * dy, -s2x * dx + c2x * dy
  o_u1 = h1x + h2x * ac + h2y * as_ - jnp.abs(d_u1)
  o_v1 = h1y + h2x * as_ + h2y * ac - jnp.abs(d_v1)
  o_u2 = h2x + h1x * ac + h1y * as_ - jnp.abs(d_u2)
  o_v2 = h2y + h1x * as_ + h1y * ac - jnp.abs(d_v2)
  o_u1, o_v1, o_u2, o_v2 = fence(o_u1, o_v1, o_u2, o_v2)
  # Pick the smallest overlap; ties go to box 1's axes, then to u.
  best_1 = jnp.minimum(o_u1, o_v1)
  best_2 = jnp.minimum(o_u2, o_v2)
  ref1 = best_1 <= best_2
  on_u = jnp.where(ref1, o_u1 <= o_v1, o_u2 <= o_v2)
  depth = jnp.where(ref1, best_1, best_2)
  # The reference box's axis: u or v of box 1 or 2, turned from box 1 towards box 2.
  cr, sr = jnp.where(ref1, c1x, c2x), jnp.where(ref1, s1x, s2x)
  ax = jnp.where(on_u, cr, -sr)
  ay = jnp.where(on_u, sr, cr)
  side = _sign(ax * dx + ay * dy)
  nx, ny = side * ax, side * ay
  # Reference: its centre, its half-depth along n and its half-span along the face.
  hrx, hry = jnp.where(ref1, h1x, h2x), jnp.where(ref1, h1y, h2y)
  h_n, h_t = jnp.where(on_u, hrx, hry), jnp.where(on_u, hry, hrx)
  crx, cry = jnp.where(ref1, c1[..., 0], c2[..., 0]), jnp.where(ref1, c1[..., 1], c2[..., 1])
  cix, ciy = jnp.where(ref1, c2[..., 0], c1[..., 0]), jnp.where(ref1, c2[..., 1], c1[..., 1])
  ci, si = jnp.where(ref1, c2x, c1x), jnp.where(ref1, s2x, s1x)
  hix, hiy = jnp.where(ref1, h2x, h1x), jnp.where(ref1, h2y, h1y)
  # m points from the reference into the incident box (n, or -n when box 2 is the reference).
  flip = jnp.where(ref1, 1.0, -1.0)
  mx, my = flip * nx, flip * ny
  face = crx * mx + cry * my + h_n  # the reference face's offset along m
  tx, ty = -my, mx  # along the face
  span = crx * tx + cry * ty
  ux, uy = hix * ci, hix * si  # the incident box's half-axes
  vx, vy = -hiy * si, hiy * ci
  # Only the incident face (the one most against m) can have corners behind the reference face.
  du, dv = ux * mx + uy * my, vx * mx + vy * my
  on_u_i = jnp.abs(du) >= jnp.abs(dv)
  fx = cix - jnp.where(on_u_i, _sign(du) * ux, _sign(dv) * vx)  # its centre
  fy = ciy - jnp.where(on_u_i, _sign(du) * uy, _sign(dv) * vy)
  ex, ey = jnp.where(on_u_i, vx, ux), jnp.where(on_u_i, vy, uy)  # its half-span
  wsum = jnp.zeros_like(depth)
  pm = jnp.zeros_like(depth)  # weighted sums of the contact points' coordinates along m, t
  pt = jnp.zeros_like(depth)
  for side_e in (1.0, -1.0):
    vtx, vty = fx + side_e * ex, fy + side_e * ey
    along_m = vtx * mx + vty * my
    w = jnp.maximum(face - along_m, 0.0)  # how deep the corner is behind the face
    wsum = wsum + w
    pm = pm + w * (along_m + 0.5 * w)
    pt = pt + w * jnp.clip(vtx * tx + vty * ty, span - h_t, span + h_t)
  touching = wsum > 0
  inv = 1.0 / jnp.where(touching, wsum, 1.0)
  pm = jnp.where(touching, pm * inv, cix * mx + ciy * my)
  pt = jnp.where(touching, pt * inv, cix * tx + ciy * ty)
  px, py = fence(pm * mx + pt * tx, pm * my + pt * ty)
  return depth, jnp.stack([nx, ny], axis=-1), jnp.stack([px, py], axis=-1)
