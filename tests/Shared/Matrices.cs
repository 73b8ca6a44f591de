// Comparing logits matrices in tests.
namespace Duet.Tests;

internal static class Matrices
{
    /// <summary>max |a − b| over two matrices of the same shape (the shape is asserted).</summary>
    public static float MaxAbsDiff(float[,] a, float[,] b)
    {
        Xunit.Assert.Equal(a.GetLength(0), b.GetLength(0));
        Xunit.Assert.Equal(a.GetLength(1), b.GetLength(1));
        float max = 0;
        for (int i = 0; i < a.GetLength(0); i++)
            for (int j = 0; j < a.GetLength(1); j++) max = Math.Max(max, Math.Abs(a[i, j] - b[i, j]));
        return max;
    }
}
