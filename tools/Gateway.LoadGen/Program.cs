using Gateway.LoadGen;

return await LoadGenApp.RunAsync(args).ConfigureAwait(false);
