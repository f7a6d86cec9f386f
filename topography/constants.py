"""Literature constants used by the V1 topography analyses, each with its source.

Keeping every number that comes from a paper (or from a data set derived from one) in this
one module means a reviewer can check them in one place, and an analysis never hides a
magic number. Sources: Ringach et al. 2002 [1]_, Kaschube et al. 2010 [2]_,
Margalit et al. 2024 [3]_ and Benson et al. 2022 [4]_.

References
----------
.. [1] Ringach, D. L., Shapley, R. M. & Hawken, M. J. (2002). Orientation selectivity in
   macaque V1: diversity and laminar dependence. *J. Neurosci.* 22(13), 5639-5651.
.. [2] Kaschube, M. et al. (2010). Universality in the evolution of orientation columns in the
   visual cortex. *Science* 330(6007), 1113-1116.
.. [3] Margalit, E. et al. (2024). A unifying framework for functional organization in early
   and higher ventral visual cortex. *Neuron* 112(14), 2435-2451.
.. [4] Benson, N. C. et al. (2022). Variability of the surface area of the V1, V2, and V3 maps
   in a large sample of human observers. *J. Neurosci.* 42(46), 8629-8646.
"""

from __future__ import annotations

import math

#: Median over the 308 cells of Ringach et al. 2002 of ``maxdc`` (the maximum mean
#: firing rate over orientations, spikes/s), computed from ``ringach_2002_db.mat``. Model
#: responses are scaled so that the median over units of their maximum response equals it
#: (the preprocessing of Margalit et al. 2024).
RINGACH_MEDIAN_MAXDC: float = 33.39

#: Median circular variance (``orivar``) of the Ringach et al. 2002 cells.
RINGACH_MEDIAN_ORIVAR: float = 0.605

#: Fraction of Ringach et al. 2002 cells with circular variance below
#: :data:`ORIENTATION_SELECTIVE_CV` (153 of 308).
RINGACH_FRACTION_SELECTIVE: float = 153 / 308

#: Number of cells in the Ringach et al. 2002 data base.
RINGACH_N_CELLS: int = 308

#: Circular-variance threshold below which a unit counts as orientation selective
#: (used by Margalit et al. 2024 for the comparison with Ringach et al. 2002).
ORIENTATION_SELECTIVE_CV: float = 0.6

#: Minimum mean response (spikes/s, after scaling to :data:`RINGACH_MEDIAN_MAXDC`) for a unit
#: to enter the orientation-selectivity statistics (Margalit et al. 2024).
MIN_MEAN_RESPONSE: float = 1.0

#: Pinwheel density (pinwheels per squared column spacing) common to tree shrew, galago,
#: ferret and cat visual cortex, Kaschube et al. 2010: the measured species means lie
#: within a few percent of pi, the value predicted by their long-range interaction models.
PINWHEEL_DENSITY_PI: float = math.pi

#: Column spacing (mm) of macaque orientation columns assumed by Margalit et al. 2024.
MACAQUE_COLUMN_SPACING_MM: float = 0.75

#: Column spacing (mm) assumed for the TDANN V1 layer by Margalit et al. 2024 (a
#: hard-coded convention of that work, "approximately the nearest-neighbour spacing of
#: 90-degree selective units"; :func:`topography.pinwheels.estimate_column_spacing`
#: measures it from the map instead).
TDANN_COLUMN_SPACING_MM: float = 3.5

#: Side (mm) of the human V1 sheet: sqrt(13.5 cm^2), Benson et al. 2022 as used by Margalit et al. 2024.
V1_SHEET_SIDE_MM: float = 36.75

#: Visual angle (degrees) spanned by one 224-px input image in Margalit et al. 2024.
DEGREES_PER_IMAGE: float = 8.0

# --- VTC ---------------------------------------------------------------------------------------

#: Effective dimensionality (participation ratio of PCA eigenvalues, see
#: :func:`topography.dimensionality.effective_dimensionality`) of human VTC responses to NSD
#: images, left hemisphere, one value per NSD subject (8), as hard-coded in the Fig. 6 code of
#: Margalit et al. 2024.
HUMAN_VTC_ED_LH: tuple[float, ...] = (20.81, 15.48, 17.94, 14.37, 12.55, 25.20, 17.26, 21.01)

#: Same as :data:`HUMAN_VTC_ED_LH`, right hemisphere (Margalit et al. 2024).
HUMAN_VTC_ED_RH: tuple[float, ...] = (14.77, 15.98, 13.13, 13.81, 16.39, 16.18, 16.26, 16.28)

#: Mean human VTC effective dimensionality over the 16 hemispheres above, 16.71
#: (Margalit et al. 2024; LH mean 18.08, RH mean 15.35).
HUMAN_VTC_ED_MEAN: float = 16.71
