//! Reports over memray captures: stats, summary, tree, transform, flame graphs
