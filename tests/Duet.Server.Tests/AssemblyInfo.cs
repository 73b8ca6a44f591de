// Each test class runs its own server process on a 2-core machine: one at a time keeps timings sane.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
