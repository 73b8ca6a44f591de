namespace Duet.Training.Tests;

public class ProjectTests
{
    [Fact]
    public void FormatVersion_IsOne() => Assert.Equal(1, TrainingInfo.FormatVersion);
}
